// Package ecggorm stores the ecg context (ECGs, their packed signal blocks and their analysis
// results) with GORM on MySQL/MariaDB or SQLite. Its tables are created by the shared
// migrations (adapters/gormstore/migrations, 00005_ecgs.sql, which explains the schema); its
// repository runs on the scopes of the gormstore unit of work, so it joins any transaction,
// whichever contexts take part in it.
package ecggorm

import (
	"fmt"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/ports"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// Store implements ecg.Store (ports/ecg).
type Store struct{}

var _ ecgport.Store = Store{}

// NewStore returns the ECG store; its repositories build on the scopes handed to ECGs.
func NewStore() Store { return Store{} }

// ECGs is the ECG repository on tx. On the pool's scope, the methods that write several
// statements (Add, Delete, SaveResults) run each call in a transaction of its own; inside a
// unit of work they run in its transaction.
func (Store) ECGs(tx ports.Scope) ecgport.Repository {
	db, err := gormstore.DB(tx)
	if err != nil {
		// A fake's scope handed to the real store: a wiring mistake no request can cause.
		panic(fmt.Sprintf("ecggorm: %v", err))
	}
	return repo{db: db, pool: gormstore.IsPool(tx)}
}
