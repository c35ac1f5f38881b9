package fakes

import (
	"context"
	"fmt"
	"sync"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
)

// stampsTable holds each user's stamps, as the users row's stamps column does.
const stampsTable = "identity.stamps"

// Stamps implements ports.Stamps on a Store. With a Board it publishes the bumped stamps
// there once the transaction has committed, as the database adapter does.
type Stamps struct{ Board ports.StampBoard }

var _ ports.Stamps = Stamps{}

// Bump increments the user's counter of scope in tx.
func (s Stamps) Bump(ctx context.Context, tx ports.Scope, user identity.UserID, scope string) error {
	var next identity.Stamps
	err := Access(tx, true, func(v *View) error {
		if !IdentityExists(v, user) {
			return fmt.Errorf("fakes: stamp of user %s: %w", user, identity.ErrUnknownUser)
		}
		all := Table[identity.UserID, identity.Stamps](v, stampsTable)
		bumped, err := all[user].Bumped(scope)
		if err != nil {
			return err
		}
		all[user], next = bumped, bumped
		return nil
	})
	if err != nil || s.Board == nil {
		return err
	}
	return AfterCommit(tx, func() { s.Board.Publish(ctx, user, next) })
}

// StampsOf returns the user's stamps, as a principal read returns them.
func StampsOf(v *View, user identity.UserID) identity.Stamps {
	return Table[identity.UserID, identity.Stamps](v, stampsTable)[user]
}

// Board is an in-memory ports.StampBoard for use-case tests, with a switch that makes it
// stop vouching, as the shared board does while Redis cannot be reached.
type Board struct {
	mu   sync.Mutex
	m    map[identity.UserID]identity.Stamps
	down bool
	gen  uint64
	// Reads counts the reads it vouched for.
	Reads int
}

var _ ports.StampBoard = (*Board)(nil)

// NewBoard returns an empty board.
func NewBoard() *Board { return &Board{m: map[identity.UserID]identity.Stamps{}} }

// Read returns the published stamps, unless the board is down.
func (b *Board) Read(_ context.Context, user identity.UserID) (identity.Stamps, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.m[user]
	if b.down || !ok {
		return "", false
	}
	b.Reads++
	return s, true
}

// Publish merges stamps; a board that is down loses them, as a failed publication would be
// lost without its retry.
func (b *Board) Publish(_ context.Context, user identity.UserID, stamps identity.Stamps) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.down {
		b.m[user] = b.m[user].Merged(stamps)
	}
}

// Generation changes at every SetDown.
func (b *Board) Generation() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gen
}

// SetDown makes the board stop (or start again) vouching, under a new generation.
func (b *Board) SetDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
	b.gen++
}
