package ecg_test

import (
	"context"
	"errors"
	"testing"

	ecgapp "github.com/acme/postsvc/application/ecg"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	ecgport "github.com/acme/postsvc/ports/ecg"
	"github.com/acme/postsvc/test/fakes/ecgfake"
)

// signal is a test lead of n samples, different for each seed.
func signal(n int, seed int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = seed + int32(i%7)*3 - int32(i%5)
	}
	return out
}

// newQuotaFixture is a fixture whose users may store quota bytes of ECGs each.
func newQuotaFixture(t *testing.T, quota int64) *fixture {
	t.Helper()
	f := newFixture(t)
	f.settings.QuotaBytes = quota
	f.svc = ecgapp.NewService(f.env.Store, ecgfake.Store{}, f.spools, f.env.Jobs, ecgapp.Analyses{sumAnalysis{}}, f.env.Clock, f.env.IDs, f.settings)
	return f
}

// packedBytes is what samples of one block take once packed: what the quota counts.
func packedBytes(samples []int32) int64 { return int64(len(ecg.AppendPacked(nil, samples))) }

// count is how many ECGs p has.
func (f *fixture) count(t *testing.T, p identity.Principal) int {
	t.Helper()
	page, err := f.svc.List(context.Background(), p, ports.PageRequest{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.ECGs)
}

func wantQuotaExceeded(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ecg.ErrQuotaExceeded) || domain.KindOf(err) != domain.KindForbidden {
		t.Fatalf("%s: %v, want %v (forbidden)", what, err, ecg.ErrQuotaExceeded)
	}
}

// TestUploadPastTheQuotaIsRefused: an upload that would take the owner past the quota is
// refused with quota_exceeded and stores nothing (no ECG, no job, its spool released); a
// retry of a stored ECG is not refused, another user is not affected, and deleting an ECG
// frees its bytes.
func TestUploadPastTheQuotaIsRefused(t *testing.T) {
	var f *fixture
	a, b, c := signal(3000, 1), signal(3000, 2), signal(3000, 3)
	size := packedBytes(a)
	if packedBytes(b) != size || packedBytes(c) != size {
		t.Fatalf("test signals pack to %d, %d and %d bytes; want equal sizes", size, packedBytes(b), packedBytes(c))
	}
	// Room for two and a half.
	f = newQuotaFixture(t, 2*size+size/2)
	alice, bob := f.user(), f.user()
	ctx := context.Background()

	if _, created, err := f.upload(t, alice, "one", a); err != nil || !created {
		t.Fatalf("first upload: created %v, %v", created, err)
	}
	second, created, err := f.upload(t, alice, "two", b)
	if err != nil || !created {
		t.Fatalf("second upload: created %v, %v", created, err)
	}
	_, _, err = f.upload(t, alice, "three", c)
	wantQuotaExceeded(t, "third upload", err)
	if n := f.count(t, alice); n != 2 {
		t.Fatalf("alice has %d ECGs after the refused upload, want 2", n)
	}
	if _, err := f.svc.Get(ctx, alice, "three"); !errors.Is(err, ecg.ErrNotFound) {
		t.Fatalf("the refused ECG: %v, want not found", err)
	}
	if f.spools.Open != 0 {
		t.Fatalf("%d spools left open", f.spools.Open)
	}
	// A retry of the second upload stores nothing new: answered with the stored ECG.
	again, created, err := f.upload(t, alice, "two", b)
	if err != nil || created || again.Key() != second.Key() {
		t.Fatalf("retried upload over the quota: created %v, %v", created, err)
	}
	// The same id with other content is the conflict it always was.
	if _, _, err := f.upload(t, alice, "two", c); !errors.Is(err, ecg.ErrExists) {
		t.Fatalf("other content under a stored id over the quota: %v, want %v", err, ecg.ErrExists)
	}
	// The quota is the owner's own.
	if _, created, err := f.upload(t, bob, "three", c); err != nil || !created {
		t.Fatalf("bob's upload: created %v, %v", created, err)
	}
	// Deleting frees the ECG's bytes.
	if err := f.svc.Delete(ctx, alice, "one"); err != nil {
		t.Fatal(err)
	}
	if _, created, err := f.upload(t, alice, "three", c); err != nil || !created {
		t.Fatalf("upload after a delete: created %v, %v", created, err)
	}
	// Only the ECGs committed have analysis jobs: alice's three and bob's one.
	if n, err := f.env.RunJobs(ctx, f.handlers()); err != nil || n != 4 {
		t.Fatalf("%d analysis jobs ran (%v), want 4", n, err)
	}
}

// TestOwnerAtTheQuotaIsRefusedBeforeSpooling: an owner whose ECGs already take the whole
// quota gets a spool that keeps nothing (none of the spools' memory or disk is taken) and a
// new ECG is refused; a retry of the stored one is still answered with it.
func TestOwnerAtTheQuotaIsRefusedBeforeSpooling(t *testing.T) {
	a := signal(3000, 1)
	f := newQuotaFixture(t, packedBytes(a))
	alice := f.user()
	ctx := context.Background()
	first, created, err := f.upload(t, alice, "one", a)
	if err != nil || !created {
		t.Fatalf("upload to exactly the quota: created %v, %v", created, err)
	}
	spool, err := f.svc.Receive(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if f.spools.Open != 0 {
		t.Fatalf("an owner at the quota took %d spools", f.spools.Open)
	}
	// Told the id, the spool refuses a new one at once (the decoder then stops reading), and
	// lets a retry of the stored one through.
	w, ok := spool.(ecgport.IDWatcher)
	if !ok {
		t.Fatalf("the spool of an owner at the quota (%T) is not told the id", spool)
	}
	wantQuotaExceeded(t, "WatchID of a new id", w.WatchID("two"))
	if err := w.WatchID("one"); err != nil {
		t.Fatalf("WatchID of the stored id: %v", err)
	}
	_ = spool.Close()
	_, _, err = f.upload(t, alice, "two", []int32{1})
	wantQuotaExceeded(t, "one sample more", err)
	_, _, err = f.upload(t, alice, "", []int32{1})
	wantQuotaExceeded(t, "an upload without an id", err)
	again, created, err := f.upload(t, alice, "one", a)
	if err != nil || created || again.Key() != first.Key() {
		t.Fatalf("retried upload at the quota: created %v, %v", created, err)
	}
	if _, _, err := f.upload(t, alice, "one", []int32{1}); !errors.Is(err, ecg.ErrExists) {
		t.Fatalf("other content under the stored id at the quota: %v, want %v", err, ecg.ErrExists)
	}
	if n := f.count(t, alice); n != 1 {
		t.Fatalf("alice has %d ECGs, want 1", n)
	}
	// Deleting the user's ECGs (as deleting the user does) frees them all.
	err = f.env.Store.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return f.svc.DeleteUserData(ctx, tx, alice.UserID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, created, err := f.upload(t, alice, "two", a); err != nil || !created {
		t.Fatalf("upload after the owner's ECGs were deleted: created %v, %v", created, err)
	}
}
