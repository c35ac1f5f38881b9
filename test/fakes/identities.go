package fakes

import (
	"sync"

	"github.com/acme/postsvc/domain/identity"
)

// identitiesTable lists the users that exist, for every context's fakes: it plays the part of
// the users table that every context's rows point at with a foreign key. The accounts fake
// keeps it; the others check against it.
const identitiesTable = "identity.users"

// AddIdentity records that a user exists.
func AddIdentity(v *View, id identity.UserID) {
	Table[identity.UserID, struct{}](v, identitiesTable)[id] = struct{}{}
}

// IdentityExists reports whether a user exists, as a foreign key check would.
func IdentityExists(v *View, id identity.UserID) bool {
	_, ok := Table[identity.UserID, struct{}](v, identitiesTable)[id]
	return ok
}

// DeleteIdentity records that a user is gone and runs every cascade registered with
// OnIdentityDeleted, in the same view: the fakes' ON DELETE CASCADE.
func DeleteIdentity(v *View, id identity.UserID) {
	delete(Table[identity.UserID, struct{}](v, identitiesTable), id)
	delete(Table[identity.UserID, identity.Stamps](v, stampsTable), id)
	cascadesMu.Lock()
	fns := cascades
	cascadesMu.Unlock()
	for _, f := range fns {
		f(v, id)
	}
}

var (
	cascadesMu sync.Mutex
	cascades   []func(v *View, id identity.UserID)
)

// OnIdentityDeleted registers what a context's fake deletes with a user, as the context's
// foreign keys do in the databases. Each context's fake package registers once, at init.
func OnIdentityDeleted(f func(v *View, id identity.UserID)) {
	cascadesMu.Lock()
	cascades = append(cascades, f)
	cascadesMu.Unlock()
}
