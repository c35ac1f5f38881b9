package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/application/accounts"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/apikey"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	port "github.com/acme/postsvc/ports/accounts"
	"github.com/acme/postsvc/test/fakes/accountsfake"
)

// countingStore is the fake accounts store whose API key repository counts the batched
// last-used writes, the only write that using a key may cause.
type countingStore struct {
	accountsfake.Store
	records *atomic.Int64
}

func (s countingStore) APIKeys(tx ports.Scope) port.APIKeyRepository {
	return countingKeys{APIKeyRepository: s.Store.APIKeys(tx), records: s.records}
}

type countingKeys struct {
	port.APIKeyRepository
	records *atomic.Int64
}

func (r countingKeys) RecordUses(ctx context.Context, uses map[apikey.ID]time.Time) error {
	r.records.Add(1)
	return r.APIKeyRepository.RecordUses(ctx, uses)
}

// keysEnv is the accounts env with the API key use case on a counting store.
type keysEnv struct {
	*env
	keys    *accounts.APIKeys
	auth    *accounts.Auth
	records *atomic.Int64
}

func newKeysEnv(t *testing.T, settings accounts.APIKeySettings) *keysEnv {
	t.Helper()
	e := newEnv()
	records := &atomic.Int64{}
	store := countingStore{records: records}
	return &keysEnv{
		env: e, records: records, auth: e.auth(nil),
		keys: accounts.NewAPIKeys(e.Store, store, e.stamps(), e.Principals, e.Clock, e.IDs, nil, settings),
	}
}

// sessionOf signs up email and returns its session principal.
func (k *keysEnv) sessionOf(t *testing.T, email string) identity.Principal {
	t.Helper()
	res := signup(t, k.auth, email)
	p, err := k.auth.Authenticate(context.Background(), res.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (k *keysEnv) create(t *testing.T, p identity.Principal, name string, days *int) port.CreatedAPIKey {
	t.Helper()
	c, err := k.keys.Create(context.Background(), p, port.NewAPIKeyInput{Name: name, ExpiresInDays: days})
	if err != nil {
		t.Fatalf("Create %q: %v", name, err)
	}
	return c
}

func wantKind(t *testing.T, what string, err error, kind domain.Kind) {
	t.Helper()
	if domain.KindOf(err) != kind {
		t.Fatalf("%s: error %v (kind %v), want kind %v", what, err, domain.KindOf(err), kind)
	}
}

func TestAPIKeyCreateListDeleteAndAuthenticate(t *testing.T) {
	k := newKeysEnv(t, accounts.APIKeySettings{})
	ctx := context.Background()
	ada := k.sessionOf(t, "ada@x.io")
	bob := k.sessionOf(t, "bob@x.io")
	c := k.create(t, ada, " ci ", nil)
	if !strings.HasPrefix(c.Secret, "pat_") || c.Key.Prefix() != c.Secret[:12] || c.Key.Name() != "ci" || c.Key.UserID() != ada.UserID {
		t.Fatalf("created %+v", c)
	}
	theirs := k.create(t, bob, "bob's", nil)

	p, err := k.keys.Authenticate(ctx, c.Secret)
	if err != nil || p.UserID != ada.UserID || p.Role != identity.RoleUser ||
		p.Credential != (identity.Credential{Kind: identity.CredentialAPIKey, ID: string(c.Key.ID())}) {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	list, err := k.keys.List(ctx, ada)
	if err != nil || len(list) != 1 || list[0].ID() != c.Key.ID() {
		t.Fatalf("List = %v, %v", list, err)
	}

	// Another user's key and forged ids of any shape are not found.
	for _, id := range []string{string(theirs.Key.ID()), "", "x", "../1", strings.Repeat("9", 500), "00000000-0000-7000-8000-999999999999", "\xff"} {
		if err := k.keys.Delete(ctx, ada, id); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want api_key_not_found", id, err)
		}
	}
	if _, err := k.keys.Authenticate(ctx, theirs.Secret); err != nil {
		t.Fatalf("bob's key was touched: %v", err)
	}
	if err := k.keys.Delete(ctx, ada, string(c.Key.ID())); err != nil {
		t.Fatal(err)
	}
	_, err = k.keys.Authenticate(ctx, c.Secret)
	wantKind(t, "Authenticate after Delete", err, domain.KindUnauthenticated)
}

func TestAPIKeysAreManagedWithASessionOnly(t *testing.T) {
	k := newKeysEnv(t, accounts.APIKeySettings{})
	ctx := context.Background()
	ada := k.sessionOf(t, "ada@x.io")
	c := k.create(t, ada, "ci", nil)
	viaKey, err := k.keys.Authenticate(ctx, c.Secret)
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.keys.Create(ctx, viaKey, port.NewAPIKeyInput{Name: "more"})
	wantKind(t, "Create with a key", err, domain.KindForbidden)
	_, err = k.keys.List(ctx, viaKey)
	wantKind(t, "List with a key", err, domain.KindForbidden)
	wantKind(t, "Delete with a key", k.keys.Delete(ctx, viaKey, string(c.Key.ID())), domain.KindForbidden)
	if _, err := k.keys.Authenticate(ctx, c.Secret); err != nil {
		t.Fatalf("the key was deleted through itself: %v", err)
	}
}

func TestAPIKeyValidation(t *testing.T) {
	k := newKeysEnv(t, accounts.APIKeySettings{})
	ada := k.sessionOf(t, "ada@x.io")
	zero, big := 0, 366
	for _, in := range []port.NewAPIKeyInput{{Name: ""}, {Name: strings.Repeat("x", 101)}, {Name: "ok", ExpiresInDays: &zero}, {Name: "ok", ExpiresInDays: &big}} {
		_, err := k.keys.Create(context.Background(), ada, in)
		wantKind(t, fmt.Sprintf("Create(%+v)", in), err, domain.KindInvalid)
	}
}

func TestAPIKeyLimitCountsActiveKeysOnly(t *testing.T) {
	k := newKeysEnv(t, accounts.APIKeySettings{})
	ctx := context.Background()
	ada := k.sessionOf(t, "ada@x.io")
	one := 1
	k.create(t, ada, "short-lived", &one)
	for i := range apikey.MaxActivePerUser - 1 {
		k.create(t, ada, fmt.Sprintf("k%d", i), nil)
	}
	_, err := k.keys.Create(ctx, ada, port.NewAPIKeyInput{Name: "26th"})
	if !errors.Is(err, apikey.ErrTooMany) {
		t.Fatalf("26th active key: %v, want too_many_keys", err)
	}
	// Once the short-lived key has expired it no longer counts.
	k.Clock.Advance(24 * time.Hour)
	k.create(t, ada, "replacement", nil)
	_, err = k.keys.Create(ctx, ada, port.NewAPIKeyInput{Name: "27th"})
	if !errors.Is(err, apikey.ErrTooMany) {
		t.Fatalf("after the replacement: %v, want too_many_keys", err)
	}
	// Another user has a limit of their own.
	k.create(t, k.sessionOf(t, "bob@x.io"), "bob's", nil)
}

func TestAPIKeyRefusedAfterExpiryAndUserDeletion(t *testing.T) {
	k := newKeysEnv(t, accounts.APIKeySettings{})
	ctx := context.Background()
	ada := k.sessionOf(t, "ada@x.io")
	one := 1
	short := k.create(t, ada, "short", &one)
	forever := k.create(t, ada, "forever", nil)
	if _, err := k.keys.Authenticate(ctx, short.Secret); err != nil {
		t.Fatal(err)
	}
	k.Clock.Advance(24 * time.Hour)
	_, err := k.keys.Authenticate(ctx, short.Secret)
	wantKind(t, "expired key", err, domain.KindUnauthenticated)

	// An admin's key is an admin principal, and the role read is the current one.
	root := k.sessionOf(t, "root@x.io")
	rootUser, _ := k.users().ByID(ctx, root.UserID)
	_ = rootUser.ChangeRole(identity.RoleAdmin, k.Clock.Now())
	if err := k.users().Update(ctx, rootUser); err != nil {
		t.Fatal(err)
	}
	adminKey := k.create(t, root, "ops", nil)
	if p, err := k.keys.Authenticate(ctx, adminKey.Secret); err != nil || p.Role != identity.RoleAdmin {
		t.Fatalf("admin key: %+v, %v", p, err)
	}

	if err := k.admin().DeleteUser(ctx, adminPrincipal(root.UserID), string(ada.UserID)); err != nil {
		t.Fatal(err)
	}
	_, err = k.keys.Authenticate(ctx, forever.Secret)
	wantKind(t, "key of a deleted user", err, domain.KindUnauthenticated)
}

func TestAPIKeyAuthenticateRefusesMalformedKeysWithoutAQueryAndReportsOutages(t *testing.T) {
	k := newKeysEnv(t, accounts.APIKeySettings{})
	ctx := context.Background()
	c := k.create(t, k.sessionOf(t, "ada@x.io"), "ci", nil)
	if !k.keys.Accepts(c.Secret) || k.keys.Accepts("a.b.c") || k.keys.Accepts("tok|u|s|1") {
		t.Fatal("Accepts must take pat_ credentials only")
	}
	for _, bad := range []string{"pat_", "pat_short", c.Secret + "x", c.Secret[:46] + "!", "pat_" + strings.Repeat("A", 42) + "=", "x" + c.Secret[1:]} {
		// An injected outage would surface if the malformed key were looked up.
		k.Store.FailNext(domain.ErrUnavailable)
		_, err := k.keys.Authenticate(ctx, bad)
		wantKind(t, fmt.Sprintf("Authenticate(%q)", bad), err, domain.KindUnauthenticated)
		k.Store.FailNext(nil)
	}
	_, err := k.keys.Authenticate(ctx, "pat_"+strings.Repeat("A", 43))
	wantKind(t, "well-formed unknown key", err, domain.KindUnauthenticated)
	k.Store.FailNext(domain.ErrUnavailable)
	_, err = k.keys.Authenticate(ctx, c.Secret)
	wantKind(t, "Authenticate during an outage", err, domain.KindUnavailable)
}

func TestAPIKeyUsesAreWrittenInBatchesNotPerRequest(t *testing.T) {
	k := newKeysEnv(t, accounts.APIKeySettings{})
	ctx := context.Background()
	ada := k.sessionOf(t, "ada@x.io")
	c := k.create(t, ada, "ci", nil)
	other := k.create(t, ada, "other", nil)
	lastUsed := func(id apikey.ID) *time.Time {
		t.Helper()
		list, err := k.keys.List(ctx, ada)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range list {
			if key.ID() == id {
				return key.LastUsedAt()
			}
		}
		t.Fatalf("key %s gone", id)
		return nil
	}

	const burst = 200
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			secret := c.Secret
			if i%10 == 0 {
				secret = other.Secret
			}
			if _, err := k.keys.Authenticate(ctx, secret); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := k.records.Load(); n != 0 {
		t.Fatalf("%d writes during a burst of %d requests, want none", n, burst)
	}
	if lastUsed(c.Key.ID()) != nil {
		t.Fatal("last_used_at written before the flush")
	}
	k.Clock.Advance(time.Second)
	used := k.Clock.Now()
	if _, err := k.keys.Authenticate(ctx, c.Secret); err != nil {
		t.Fatal(err)
	}
	if err := k.keys.FlushUses(ctx); err != nil {
		t.Fatal(err)
	}
	if n := k.records.Load(); n != 1 {
		t.Fatalf("%d writes for one flush, want 1", n)
	}
	if got := lastUsed(c.Key.ID()); got == nil || !got.Equal(used) {
		t.Fatalf("last_used_at = %v, want the latest use %v", got, used)
	}
	if lastUsed(other.Key.ID()) == nil {
		t.Fatal("the other key's use was not written")
	}
	// Nothing new: no write.
	if err := k.keys.FlushUses(ctx); err != nil || k.records.Load() != 1 {
		t.Fatalf("an empty flush wrote (%d writes, %v)", k.records.Load(), err)
	}

	// A failed flush keeps the uses for the next one.
	k.Clock.Advance(time.Second)
	later := k.Clock.Now()
	if _, err := k.keys.Authenticate(ctx, c.Secret); err != nil {
		t.Fatal(err)
	}
	k.Store.FailNext(domain.ErrUnavailable)
	if err := k.keys.FlushUses(ctx); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("flush during an outage: %v", err)
	}
	if err := k.keys.FlushUses(ctx); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(c.Key.ID()); got == nil || !got.Equal(later) {
		t.Fatalf("last_used_at after a failed flush = %v, want %v", got, later)
	}
}

func TestAPIKeyPendingUsesAreBounded(t *testing.T) {
	k := newKeysEnv(t, accounts.APIKeySettings{MaxPendingUses: 2, UseFlushInterval: time.Hour})
	ctx := context.Background()
	ada := k.sessionOf(t, "ada@x.io")
	var created []port.CreatedAPIKey
	for i := range 3 {
		created = append(created, k.create(t, ada, fmt.Sprintf("k%d", i), nil))
		if _, err := k.keys.Authenticate(ctx, created[i].Secret); err != nil {
			t.Fatal(err)
		}
	}
	// The third key's use did not fit: it woke the flusher, which writes the two waiting
	// long before its hour is up.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- k.keys.RunUseFlusher(runCtx) }()
	deadline := time.Now().Add(5 * time.Second)
	for k.records.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	list, err := k.keys.List(ctx, ada)
	if err != nil {
		t.Fatal(err)
	}
	written := 0
	for _, key := range list {
		if key.LastUsedAt() != nil {
			written++
		}
	}
	if k.records.Load() != 1 || written != 2 {
		t.Fatalf("%d writes, %d keys with last_used_at; want 1 and 2", k.records.Load(), written)
	}
}

func TestAPIKeyFlusherRunsEveryIntervalAndStops(t *testing.T) {
	k := newKeysEnv(t, accounts.APIKeySettings{UseFlushInterval: 20 * time.Millisecond})
	ctx := context.Background()
	c := k.create(t, k.sessionOf(t, "ada@x.io"), "ci", nil)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- k.keys.RunUseFlusher(runCtx) }()
	if _, err := k.keys.Authenticate(ctx, c.Secret); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for k.records.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if k.records.Load() != 1 {
		t.Fatalf("no flush within 5 s of a 20 ms interval")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the flusher did not stop")
	}
	// The final flush writes what is left, even with the context ended.
	if _, err := k.keys.Authenticate(ctx, c.Secret); err != nil {
		t.Fatal(err)
	}
	if err := k.keys.FinalFlush(runCtx); err != nil || k.records.Load() != 2 {
		t.Fatalf("final flush: %v, %d writes", err, k.records.Load())
	}
}

func TestAPIKeyCreateForADeletedAccountIsUnauthenticated(t *testing.T) {
	k := newKeysEnv(t, accounts.APIKeySettings{})
	ctx := context.Background()
	ada := k.sessionOf(t, "ada@x.io")
	if err := k.users().Delete(ctx, ada.UserID); err != nil {
		t.Fatal(err)
	}
	_, err := k.keys.Create(ctx, ada, port.NewAPIKeyInput{Name: "late"})
	wantKind(t, "Create after the account's deletion", err, domain.KindUnauthenticated)
}
