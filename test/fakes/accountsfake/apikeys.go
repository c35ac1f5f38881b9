package accountsfake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/acme/postsvc/domain/accounts/apikey"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/fakes"
)

const apiKeysTable = "accounts.api_keys"

func init() {
	// Keys go with their user, as the api_keys table's foreign key does.
	fakes.OnIdentityDeleted(func(v *fakes.View, id identity.UserID) {
		keys := apiKeysOf(v)
		for kid, k := range keys {
			if k.UserID() == id {
				delete(keys, kid)
			}
		}
	})
}

// APIKeys is the personal API key repository on tx.
func (Store) APIKeys(tx ports.Scope) accounts.APIKeyRepository { return apiKeys{tx} }

type apiKeys struct{ tx ports.Scope }

func apiKeysOf(v *fakes.View) map[apikey.ID]apikey.Key {
	return fakes.Table[apikey.ID, apikey.Key](v, apiKeysTable)
}

func (r apiKeys) Add(_ context.Context, k *apikey.Key) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		if !fakes.IdentityExists(v, k.UserID()) {
			return fmt.Errorf("accountsfake: api key user %s: %w", k.UserID(), user.ErrNotFound)
		}
		all := apiKeysOf(v)
		for _, existing := range all {
			if existing.ID() == k.ID() || existing.Hash() == k.Hash() {
				return fmt.Errorf("accountsfake: api key %s already exists", k.ID())
			}
		}
		all[k.ID()] = *k
		return nil
	})
}

func (r apiKeys) ListByUser(_ context.Context, userID identity.UserID) ([]*apikey.Key, error) {
	var out []*apikey.Key
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		all := apiKeysOf(v)
		ids := slices.Sorted(maps.Keys(all))
		slices.Reverse(ids)
		for _, id := range ids {
			if k := all[id]; k.UserID() == userID {
				out = append(out, &k)
			}
		}
		return nil
	})
	return out, err
}

func (r apiKeys) Delete(_ context.Context, userID identity.UserID, id apikey.ID) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := apiKeysOf(v)
		k, ok := all[id]
		if !ok || k.UserID() != userID {
			return apikey.ErrNotFound
		}
		delete(all, id)
		return nil
	})
}

// CountActiveForUpdate needs no lock: the fake store runs transactions one at a time.
func (r apiKeys) CountActiveForUpdate(_ context.Context, userID identity.UserID, now time.Time) (int, error) {
	n := 0
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		if !fakes.IdentityExists(v, userID) {
			return user.ErrNotFound
		}
		for _, k := range apiKeysOf(v) {
			if k.UserID() == userID && k.Active(now) {
				n++
			}
		}
		return nil
	})
	return n, err
}

func (r apiKeys) Principal(_ context.Context, hash string, now time.Time) (identity.Principal, error) {
	var out identity.Principal
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		for _, k := range apiKeysOf(v) {
			if k.Hash() != hash || !k.Active(now) {
				continue
			}
			u, ok := usersOf(v)[k.UserID()]
			if !ok {
				return apikey.ErrNotFound
			}
			out = identity.Principal{
				UserID: u.ID(), Role: u.Role(),
				Credential: identity.Credential{Kind: identity.CredentialAPIKey, ID: string(k.ID()), ExpiresAt: expiresAt(k.ExpiresAt())},
				Stamps:     fakes.StampsOf(v, u.ID()),
			}
			return nil
		}
		return apikey.ErrNotFound
	})
	return out, err
}

func (r apiKeys) RecordUses(_ context.Context, uses map[apikey.ID]time.Time) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := apiKeysOf(v)
		for id, at := range uses {
			k, ok := all[id]
			if !ok {
				continue
			}
			if last := k.LastUsedAt(); last != nil && !last.Before(at) {
				continue
			}
			at = at.UTC().Truncate(time.Microsecond)
			all[id] = *apikey.Rehydrate(k.ID(), k.UserID(), k.Name(), k.Prefix(), k.Hash(), k.CreatedAt(), k.ExpiresAt(), &at)
		}
		return nil
	})
}

// expiresAt is a key's expiry as a credential's: zero when it never expires.
func expiresAt(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}
