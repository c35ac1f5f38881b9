package fakes

import (
	"context"
	"fmt"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// stampsTable holds the users' change counters by (user, scope).
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
		Table[[2]string, int64](v, stampsTable)[[2]string{string(user), scope}]++
		return nil
	})
}

// StampsOf returns the user's stamps, as a principal read returns them: every scope bumped.
func StampsOf(v *View, user identity.UserID) []identity.Stamp {
	var out []identity.Stamp
	for k, n := range Table[[2]string, int64](v, stampsTable) {
		if k[0] == string(user) {
			out = append(out, identity.Stamp{Scope: k[1], Version: n})
		}
	}
	return out
}
