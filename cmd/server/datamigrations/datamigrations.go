// Package datamigrations lists the contexts' migrations written in Go
// (gormstore.DataMigration). The composition root runs them with the SQL files wherever the
// service migrates its database, and so do the test databases (test/testdb); a context that
// adds one adds it here.
package datamigrations

import (
	"github.com/acme/postsvc/adapters/accounts/accountsgorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/media/mediagorm"
)

// All are the data migrations, in any order (each carries its version).
var All = []gormstore.DataMigration{
	accountsgorm.RefoldMigration, mediagorm.ReindexMigration, mediagorm.SharpSReindexMigration, accountsgorm.NFCNamesMigration,
	mediagorm.LongWordsReindexMigration,
}
