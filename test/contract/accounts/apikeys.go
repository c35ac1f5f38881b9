package accounts

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/accounts/apikey"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	port "github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/contract"
)

func apiKeyTests() []contract.Test[Backend] {
	return []contract.Test[Backend]{
		{Name: "add, list and delete", Run: testAPIKeyAddListDelete},
		{Name: "principal", Run: testAPIKeyPrincipal},
		{Name: "count active and lock the user", Run: testAPIKeyCountActive},
		{Name: "concurrent creations stop at the limit", Run: testAPIKeyConcurrentLimit},
		{Name: "record uses in batches", Run: testAPIKeyRecordUses},
		{Name: "deleting the user deletes the keys", Run: testAPIKeyUserDeleted},
		{Name: "malformed ids and hashes are not found", Run: testAPIKeyMalformed},
	}
}

// APIKeys is the API key repository on the pool.
func (b Backend) APIKeys() port.APIKeyRepository { return b.Store.APIKeys(b.UoW.Pool()) }

// addKey stores a new key of u and returns it with its secret.
func addKey(t *testing.T, b Backend, u identity.UserID, name string, days *int, now time.Time) (*apikey.Key, string) {
	t.Helper()
	k, secret, err := apikey.New(apikey.ID(contract.NewID(t)), u, name, days, now)
	contract.NoErr(t, "apikey.New", err)
	contract.NoErr(t, "Add key", b.APIKeys().Add(t.Context(), k))
	return k, secret
}

func assertSameKey(t testing.TB, got, want *apikey.Key) {
	t.Helper()
	if got.ID() != want.ID() || got.UserID() != want.UserID() || got.Name() != want.Name() ||
		got.Prefix() != want.Prefix() || got.Hash() != want.Hash() {
		t.Errorf("key = {%s %s %q %s %s}, want {%s %s %q %s %s}", got.ID(), got.UserID(), got.Name(), got.Prefix(), got.Hash(),
			want.ID(), want.UserID(), want.Name(), want.Prefix(), want.Hash())
	}
	contract.SameInstant(t, "created_at", got.CreatedAt(), want.CreatedAt())
	sameOptional(t, "expires_at", got.ExpiresAt(), want.ExpiresAt())
	sameOptional(t, "last_used_at", got.LastUsedAt(), want.LastUsedAt())
}

func sameOptional(t testing.TB, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case (got == nil) != (want == nil):
		t.Errorf("%s = %v, want %v", what, got, want)
	case got != nil:
		contract.SameInstant(t, what, *got, *want)
	}
}

func keyIDs(ks []*apikey.Key) []apikey.ID {
	out := make([]apikey.ID, len(ks))
	for i, k := range ks {
		out[i] = k.ID()
	}
	return out
}

func days(n int) *int { return &n }

func testAPIKeyAddListDelete(t *testing.T, b Backend) {
	ctx := t.Context()
	now := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("UTC+5", 5*3600))
	owner := addUser(t, b, "keys@x.io", "", identity.RoleUser)
	other := addUser(t, b, "other-keys@x.io", "", identity.RoleUser)
	forever, _ := addKey(t, b, owner.ID(), "CI 🚀", nil, now)
	monthly, _ := addKey(t, b, owner.ID(), strings.Repeat("é", 100), days(30), now)
	theirs, _ := addKey(t, b, other.ID(), "theirs", nil, now)

	list, err := b.APIKeys().ListByUser(ctx, owner.ID())
	contract.NoErr(t, "ListByUser", err)
	if ids := keyIDs(list); !slices.Equal(ids, contract.NewestFirst([]apikey.ID{forever.ID(), monthly.ID()})) {
		t.Fatalf("ListByUser = %v, want the owner's two keys newest first", ids)
	}
	assertSameKey(t, list[0], monthly)
	assertSameKey(t, list[1], forever)

	ghost := contract.MakeUser(t, "ghost-keys@x.io", "", identity.RoleUser)
	k, _, err := apikey.New(apikey.ID(contract.NewID(t)), ghost.ID(), "n", nil, now)
	contract.NoErr(t, "apikey.New", err)
	contract.WantErr(t, "Add for a missing user", b.APIKeys().Add(ctx, k), user.ErrNotFound)

	contract.WantErr(t, "Delete another user's key", b.APIKeys().Delete(ctx, owner.ID(), theirs.ID()), apikey.ErrNotFound)
	contract.NoErr(t, "Delete", b.APIKeys().Delete(ctx, owner.ID(), forever.ID()))
	contract.WantErr(t, "Delete twice", b.APIKeys().Delete(ctx, owner.ID(), forever.ID()), apikey.ErrNotFound)
	list, err = b.APIKeys().ListByUser(ctx, owner.ID())
	contract.NoErr(t, "ListByUser", err)
	if ids := keyIDs(list); !slices.Equal(ids, []apikey.ID{monthly.ID()}) {
		t.Fatalf("ListByUser after Delete = %v", ids)
	}
	list, err = b.APIKeys().ListByUser(ctx, other.ID())
	contract.NoErr(t, "ListByUser other", err)
	if ids := keyIDs(list); !slices.Equal(ids, []apikey.ID{theirs.ID()}) {
		t.Fatalf("the other user's keys = %v", ids)
	}
}

func testAPIKeyPrincipal(t *testing.T, b Backend) {
	ctx := t.Context()
	now := time.Now()
	member := addUser(t, b, "member-keys@x.io", "", identity.RoleUser)
	admin := addUser(t, b, "admin-keys@x.io", "", identity.RoleAdmin)
	_, secret := addKey(t, b, member.ID(), "m", nil, now)
	memberKey, _ := b.APIKeys().ListByUser(ctx, member.ID())
	short, shortSecret := addKey(t, b, member.ID(), "short", days(1), now)
	adminKey, adminSecret := addKey(t, b, admin.ID(), "a", nil, now)
	deleted, deletedSecret := addKey(t, b, member.ID(), "gone", nil, now)
	contract.NoErr(t, "Delete", b.APIKeys().Delete(ctx, member.ID(), deleted.ID()))

	credential := func(k *apikey.Key) identity.Credential {
		c := identity.Credential{Kind: identity.CredentialAPIKey, ID: string(k.ID())}
		if k.ExpiresAt() != nil {
			c.ExpiresAt = storedTime(*k.ExpiresAt())
		}
		return c
	}
	for _, c := range []struct {
		name   string
		secret string
		at     time.Time
		want   identity.Principal
	}{
		{"user key", secret, now, identity.Principal{UserID: member.ID(), Role: identity.RoleUser, Credential: credential(memberKey[0])}},
		{"admin key", adminSecret, now, identity.Principal{UserID: admin.ID(), Role: identity.RoleAdmin, Credential: credential(adminKey)}},
		{"just before expiry", shortSecret, short.ExpiresAt().Add(-10 * time.Millisecond), identity.Principal{UserID: member.ID(), Role: identity.RoleUser, Credential: credential(short)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := b.APIKeys().Principal(ctx, apikey.HashSecret(c.secret), c.at)
			contract.NoErr(t, "Principal", err)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Principal = %+v, want %+v", got, c.want)
			}
		})
	}
	for _, c := range []struct {
		name, secret string
		at           time.Time
	}{
		{"expired", shortSecret, short.ExpiresAt().Add(10 * time.Millisecond)},
		{"at the expiry instant", shortSecret, *short.ExpiresAt()},
		{"deleted", deletedSecret, now},
		{"unknown", "pat_" + strings.Repeat("A", 43), now},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.APIKeys().Principal(ctx, apikey.HashSecret(c.secret), c.at)
			contract.WantErr(t, "Principal", err, apikey.ErrNotFound)
		})
	}

	// A role change shows on the next read.
	contract.NoErr(t, "ChangeRole", member.ChangeRole(identity.RoleAdmin, now))
	contract.NoErr(t, "Update", b.Users().Update(ctx, member))
	got, err := b.APIKeys().Principal(ctx, apikey.HashSecret(secret), now)
	contract.NoErr(t, "Principal", err)
	if got.Role != identity.RoleAdmin {
		t.Fatalf("role after promotion = %s", got.Role)
	}
	// So does a stamp bump, which the same read carries.
	err = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return b.Stamps.Bump(ctx, tx, member.ID(), "posts")
	})
	contract.NoErr(t, "Bump", err)
	got, err = b.APIKeys().Principal(ctx, apikey.HashSecret(secret), now)
	contract.NoErr(t, "Principal", err)
	if got.Stamp("posts") != 1 {
		t.Fatalf("stamps = %q, want posts=1", got.Stamps)
	}
}

func testAPIKeyCountActive(t *testing.T, b Backend) {
	ctx := t.Context()
	now := time.Now()
	u := addUser(t, b, "count-keys@x.io", "", identity.RoleUser)
	other := addUser(t, b, "count-other@x.io", "", identity.RoleUser)
	addKey(t, b, u.ID(), "forever", nil, now)
	short, _ := addKey(t, b, u.ID(), "short", days(1), now)
	addKey(t, b, u.ID(), "long", days(365), now)
	addKey(t, b, other.ID(), "theirs", nil, now)

	count := func(at time.Time) int {
		t.Helper()
		var n int
		err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
			var err error
			n, err = b.Store.APIKeys(tx).CountActiveForUpdate(ctx, u.ID(), at)
			return err
		})
		contract.NoErr(t, "CountActiveForUpdate", err)
		return n
	}
	if n := count(now); n != 3 {
		t.Fatalf("active keys = %d, want 3", n)
	}
	if n := count(*short.ExpiresAt()); n != 2 {
		t.Fatalf("active keys at the short key's expiry = %d, want 2", n)
	}
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		_, err := b.Store.APIKeys(tx).CountActiveForUpdate(ctx, identity.UserID(contract.NewID(t)), now)
		return err
	})
	contract.WantErr(t, "CountActiveForUpdate of a missing user", err, user.ErrNotFound)
}

// testAPIKeyConcurrentLimit races creations the way the use case makes them: lock and count,
// then add if under the limit. However many run at once, no more than the limit are stored.
func testAPIKeyConcurrentLimit(t *testing.T, b Backend) {
	const n, limit = 40, apikey.MaxActivePerUser
	ctx := t.Context()
	now := time.Now()
	u := addUser(t, b, "race-keys@x.io", "", identity.RoleUser)
	addKey(t, b, u.ID(), "expired", days(1), now.Add(-48*time.Hour)) // does not count
	errs := make([]error, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		k, _, err := apikey.New(apikey.ID(contract.NewID(t)), u.ID(), fmt.Sprintf("k%d", i), nil, now)
		contract.NoErr(t, "apikey.New", err)
		wg.Go(func() {
			errs[i] = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
				active, err := b.Store.APIKeys(tx).CountActiveForUpdate(ctx, u.ID(), now)
				if err != nil || active >= limit {
					return err
				}
				created[i] = true
				return b.Store.APIKeys(tx).Add(ctx, k)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		contract.NoErr(t, fmt.Sprintf("creation %d", i), err)
	}
	list, err := b.APIKeys().ListByUser(ctx, u.ID())
	contract.NoErr(t, "ListByUser", err)
	if len(list) != limit+1 {
		t.Fatalf("%d keys stored after %d concurrent creations, want %d and the expired one", len(list), n, limit)
	}
}

func testAPIKeyRecordUses(t *testing.T, b Backend) {
	ctx := t.Context()
	now := time.Now()
	u := addUser(t, b, "uses@x.io", "", identity.RoleUser)
	k1, _ := addKey(t, b, u.ID(), "one", nil, now)
	k2, _ := addKey(t, b, u.ID(), "two", nil, now)
	k3, _ := addKey(t, b, u.ID(), "three", nil, now)
	lastUsed := func(id apikey.ID) *time.Time {
		t.Helper()
		list, err := b.APIKeys().ListByUser(ctx, u.ID())
		contract.NoErr(t, "ListByUser", err)
		for _, k := range list {
			if k.ID() == id {
				return k.LastUsedAt()
			}
		}
		t.Fatalf("key %s is gone", id)
		return nil
	}
	t1, t2 := now.Add(time.Minute), now.Add(2*time.Minute)
	// Hundreds of ids of deleted keys sort before the live ones, so these land in a later
	// batch of the statement than the first.
	uses := map[apikey.ID]time.Time{k1.ID(): t2, k2.ID(): t1}
	for i := range 600 {
		uses[apikey.ID(fmt.Sprintf("00000000-0000-7000-8000-%012d", i))] = t1
	}
	contract.NoErr(t, "RecordUses", b.APIKeys().RecordUses(ctx, uses))
	sameOptional(t, "k1 last_used_at", lastUsed(k1.ID()), &t2)
	sameOptional(t, "k2 last_used_at", lastUsed(k2.ID()), &t1)
	sameOptional(t, "k3 last_used_at", lastUsed(k3.ID()), nil)

	// Never backwards: an older time (another instance's late batch) keeps the stored one;
	// a newer one replaces it.
	t3 := now.Add(3 * time.Minute)
	contract.NoErr(t, "RecordUses", b.APIKeys().RecordUses(ctx, map[apikey.ID]time.Time{k1.ID(): t1, k2.ID(): t3}))
	sameOptional(t, "k1 after an older use", lastUsed(k1.ID()), &t2)
	sameOptional(t, "k2 after a newer use", lastUsed(k2.ID()), &t3)
	contract.NoErr(t, "RecordUses of nothing", b.APIKeys().RecordUses(ctx, nil))
}

func testAPIKeyUserDeleted(t *testing.T, b Backend) {
	ctx := t.Context()
	now := time.Now()
	u := addUser(t, b, "leaving-keys@x.io", "", identity.RoleUser)
	_, secret := addKey(t, b, u.ID(), "k", nil, now)
	contract.NoErr(t, "Delete user", b.Users().Delete(ctx, u.ID()))
	_, err := b.APIKeys().Principal(ctx, apikey.HashSecret(secret), now)
	contract.WantErr(t, "Principal after the user's deletion", err, apikey.ErrNotFound)
	list, err := b.APIKeys().ListByUser(ctx, u.ID())
	contract.NoErr(t, "ListByUser", err)
	if len(list) != 0 {
		t.Fatalf("%d keys left after the user's deletion", len(list))
	}
}

func testAPIKeyMalformed(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "malformed-keys@x.io", "", identity.RoleUser)
	addKey(t, b, u.ID(), "k", nil, time.Now())
	for _, id := range []string{"\xff\xfe\xfd", strings.Repeat("7", 100), "é-ü-😀", "", "' OR '1'='1"} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			contract.WantErr(t, "Delete", b.APIKeys().Delete(ctx, u.ID(), apikey.ID(id)), apikey.ErrNotFound)
			_, err := b.APIKeys().Principal(ctx, id, time.Now())
			contract.WantErr(t, "Principal", err, apikey.ErrNotFound)
			contract.NoErr(t, "RecordUses", b.APIKeys().RecordUses(ctx, map[apikey.ID]time.Time{apikey.ID(id): time.Now()}))
		})
	}
	list, err := b.APIKeys().ListByUser(ctx, u.ID())
	contract.NoErr(t, "ListByUser", err)
	if len(list) != 1 {
		t.Fatalf("%d keys left, want 1", len(list))
	}
}
