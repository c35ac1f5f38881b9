package fakes

import (
	"context"
	"fmt"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// stampsTable holds each user's stamps, as the users row's stamps column does.
const stampsTable = "identity.stamps"

// Stamps implements ports.Stamps on a Store.
type Stamps struct{}

var _ ports.Stamps = Stamps{}

// Bump increments the user's counter of scope in tx.
func (Stamps) Bump(_ context.Context, tx ports.Scope, user identity.UserID, scope string) error {
	return Access(tx, true, func(v *View) error {
		if !IdentityExists(v, user) {
			return fmt.Errorf("fakes: stamp of user %s: %w", user, identity.ErrUnknownUser)
		}
		all := Table[identity.UserID, identity.Stamps](v, stampsTable)
		next, err := all[user].Bumped(scope)
		if err != nil {
			return err
		}
		all[user] = next
		return nil
	})
}

// StampsOf returns the user's stamps, as a principal read returns them.
func StampsOf(v *View, user identity.UserID) identity.Stamps {
	return Table[identity.UserID, identity.Stamps](v, stampsTable)[user]
}
