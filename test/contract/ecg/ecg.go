package ecg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	ecgport "github.com/acme/postsvc/ports/ecg"
	"github.com/acme/postsvc/test/contract"
)

// errBoom is a failure of the function run in a unit of work, unrelated to storage.
var errBoom = errors.New("boom")

// Tests is the ECG repository contract.
func Tests() []contract.Group[Backend] {
	return []contract.Group[Backend]{
		{Name: "add", Tests: []contract.Test[Backend]{
			{Name: "add and read back", Run: testAddAndRead},
			{Name: "without an id the key is the id", Run: testIDFromKey},
			{Name: "a duplicate id of one owner stores nothing", Run: testDuplicateID},
			{Name: "two owners may use one id", Run: testSameIDTwoOwners},
			{Name: "ids differing in case are different ECGs", Run: testIDCase},
			{Name: "dot ids and the longest id", Run: testDotIDs},
			{Name: "the owner must exist", Run: testUnknownOwner},
			{Name: "a rolled-back unit of work leaves nothing", Run: testAddRollback},
			{Name: "concurrent adds of one id: the unique index decides", Run: testConcurrentAdds},
			{Name: "lock owner: a second holder waits, an unknown owner is refused", Run: testLockOwner},
		}},
		{Name: "quota", Tests: []contract.Test[Backend]{
			{Name: "lock owner counts the packed bytes of the owner's ECGs; deletes free them", Run: testUsage},
			{Name: "concurrent checked adds of one owner never pass the limit", Run: testQuotaConcurrent},
		}},
		{Name: "blocks", Tests: []contract.Test[Backend]{
			{Name: "a million-sample lead round-trips through pages", Run: testMillionSamples},
			{Name: "pages start anywhere and keep their budget", Run: testBlocksFrom},
			{Name: "many small blocks", Run: testManySmallBlocks},
		}},
		{Name: "read and delete", Tests: []contract.Test[Backend]{
			{Name: "scoped by owner", Run: testScopedByOwner},
			{Name: "malformed ids and keys are not found", Run: testMalformed},
			{Name: "list newest first in pages", Run: testListPaging},
			{Name: "delete removes blocks and results", Run: testDelete},
			{Name: "delete by owner, then purge in batches", Run: testDeleteByOwnerAndPurge},
			{Name: "deleting the user takes its ECGs", Run: testUserDeletionCascades},
		}},
		{Name: "analysis", Tests: []contract.Test[Backend]{
			{Name: "save results replaces them and marks done", Run: testSaveResults},
			{Name: "numbers round-trip as their text", Run: testNumbersRoundTrip},
			{Name: "results storage cannot keep are refused", Run: testResultsRefused},
			{Name: "save results in a rolled-back unit of work", Run: testSaveResultsRollback},
			{Name: "mark failed changes only a pending ECG", Run: testMarkFailed},
			{Name: "failure reasons are cut to the column", Run: testFailureReason},
			{Name: "outdated finds results of other versions", Run: testOutdated},
		}},
		{Name: "analysis batches", Tests: []contract.Test[Backend]{
			{Name: "by keys reads the stored ones in key order", Run: testByKeys},
			{Name: "blocks of several ECGs in one read", Run: testBlocksOf},
			{Name: "save first results of the pending ones, all or none", Run: testSaveFirstResults},
		}},
	}
}

func testAddAndRead(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	u := addECG(t, b, owner, "rec-2025-11-03",
		lead{"I", walk(5000, 1)},
		lead{"aVR", walk(70000, 2)}, // two blocks
		lead{"Ω-ß", []int32{0}},
		lead{"心电图", wild(300, 3)},
		lead{"😀x", []int32{math.MinInt32, math.MaxInt32, -1, 0, 1}},
		lead{strings.Repeat("é", ecg.MaxLeadNameChars), walk(17, 4)},
	)
	for _, l := range u.e.Leads() {
		if l.Signal.TextBytes == 0 || l.Signal.Samples == 0 {
			t.Fatalf("test lead %q has an empty signal description", l.Name)
		}
	}

	got, err := b.ECGs().Get(ctx, owner, u.e.ID())
	contract.NoErr(t, "Get", err)
	assertSameECG(t, got, u.e)
	if got.Status() != ecg.StatusPending || !got.AnalysedAt().IsZero() || got.Failure() != "" {
		t.Errorf("a new ECG is %s (%q) analysed at %s, want pending", got.Status(), got.Failure(), got.AnalysedAt())
	}
	byKey, err := b.ECGs().ByKey(ctx, u.e.Key())
	contract.NoErr(t, "ByKey", err)
	assertSameECG(t, byKey, u.e)

	all, _ := readAll(t, b, u.e.Key(), math.MaxInt32)
	assertBlocks(t, u, all)
	if rs := storedResults(t, b, u.e.Key()); len(rs) != 0 {
		t.Errorf("a new ECG has %d results", len(rs))
	}
}

func testIDFromKey(t *testing.T, b Backend) {
	owner := b.NewUser(t)
	u := addECG(t, b, owner, "")
	if string(u.e.ID()) != string(u.e.Key()) {
		t.Fatalf("test ECG: id %q, key %q", u.e.ID(), u.e.Key())
	}
	got, err := b.ECGs().Get(t.Context(), owner, ecg.ID(u.e.Key()))
	contract.NoErr(t, "Get by the key as id", err)
	assertSameECG(t, got, u.e)
}

func testDuplicateID(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	first := addECG(t, b, owner, "rec-1", lead{"I", walk(100, 1)})

	for _, how := range []string{"on the pool", "in a unit of work"} {
		t.Run(how, func(t *testing.T) {
			second := makeECG(t, owner, "rec-1", lead{"II", walk(70000, 2)})
			var err error
			if how == "on the pool" {
				err = b.ECGs().Add(ctx, second.e, second.blocks)
			} else {
				err = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
					return b.Store.ECGs(tx).Add(ctx, second.e, second.blocks)
				})
			}
			contract.WantErr(t, "Add of a duplicate id", err, ecgport.ErrDuplicate)
			_, err = b.ECGs().ByKey(ctx, second.e.Key())
			contract.WantErr(t, "ByKey of the refused ECG", err, ecg.ErrNotFound)
			if n := blocksLeft(t, b, second.e.Key()); n != 0 {
				t.Fatalf("%d blocks of the refused ECG were stored", n)
			}
			got, err := b.ECGs().Get(ctx, owner, "rec-1")
			contract.NoErr(t, "Get", err)
			assertSameECG(t, got, first.e)
		})
	}
	all, _ := readAll(t, b, first.e.Key(), math.MaxInt32)
	assertBlocks(t, first, all)
	// Nothing of the refused ECGs is an orphan either.
	contract.NoErr(t, "DeleteByOwner", b.ECGs().DeleteByOwner(ctx, owner))
	n, err := b.ECGs().PurgeOwner(ctx, owner, 100)
	contract.NoErr(t, "PurgeOwner", err)
	if n != len(first.blocks.blocks) {
		t.Fatalf("purged %d rows, want the first ECG's %d blocks", n, len(first.blocks.blocks))
	}
}

func testSameIDTwoOwners(t *testing.T, b Backend) {
	ctx := t.Context()
	a, c := b.NewUser(t), b.NewUser(t)
	ea := addECG(t, b, a, "shared-id", lead{"I", walk(10, 1)})
	ec := addECG(t, b, c, "shared-id", lead{"I", walk(10, 2)})
	for _, want := range []upload{ea, ec} {
		got, err := b.ECGs().Get(ctx, want.e.Owner(), "shared-id")
		contract.NoErr(t, "Get", err)
		assertSameECG(t, got, want.e)
	}
	contract.NoErr(t, "Delete a's", b.ECGs().Delete(ctx, a, "shared-id"))
	got, err := b.ECGs().Get(ctx, c, "shared-id")
	contract.NoErr(t, "Get c's after a's delete", err)
	assertSameECG(t, got, ec.e)
}

func testIDCase(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	lower := addECG(t, b, owner, "abc", lead{"I", walk(10, 1)})
	upper := addECG(t, b, owner, "ABC", lead{"I", walk(10, 2)})
	mixed := addECG(t, b, owner, "aBc", lead{"I", walk(10, 3)})
	for _, want := range []upload{lower, upper, mixed} {
		got, err := b.ECGs().Get(ctx, owner, want.e.ID())
		contract.NoErr(t, "Get "+string(want.e.ID()), err)
		assertSameECG(t, got, want.e)
	}
	_, err := b.ECGs().Get(ctx, owner, "Abc")
	contract.WantErr(t, "Get of another case", err, ecg.ErrNotFound)
	contract.WantErr(t, "Delete of another case", b.ECGs().Delete(ctx, owner, "abC"), ecg.ErrNotFound)
	contract.NoErr(t, "Delete ABC", b.ECGs().Delete(ctx, owner, "ABC"))
	for _, want := range []upload{lower, mixed} {
		_, err := b.ECGs().Get(ctx, owner, want.e.ID())
		contract.NoErr(t, "Get "+string(want.e.ID())+" after deleting ABC", err)
	}
	// A duplicate is exact too.
	dup := makeECG(t, owner, "abc")
	contract.WantErr(t, "Add of abc again", b.ECGs().Add(ctx, dup.e, dup.blocks), ecgport.ErrDuplicate)
}

func testDotIDs(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	ids := []string{".", "..", "...", "-", "_", "a.b", strings.Repeat("Z", ecg.MaxIDBytes),
		"AZaz09._-" + strings.Repeat("x", ecg.MaxIDBytes-9)}
	stored := map[string]upload{}
	for i, id := range ids {
		stored[id] = addECG(t, b, owner, id, lead{"I", walk(3, uint64(i))})
	}
	for _, id := range ids {
		got, err := b.ECGs().Get(ctx, owner, ecg.ID(id))
		contract.NoErr(t, fmt.Sprintf("Get %q", id), err)
		assertSameECG(t, got, stored[id].e)
	}
	list, err := b.ECGs().List(ctx, ecgport.ListQuery{Owner: owner, Limit: 100})
	contract.NoErr(t, "List", err)
	if len(list.ECGs) != len(ids) {
		t.Fatalf("listed %d ECGs, want %d", len(list.ECGs), len(ids))
	}
	contract.NoErr(t, `Delete ".."`, b.ECGs().Delete(ctx, owner, ".."))
	for _, id := range []string{".", "..."} {
		_, err := b.ECGs().Get(ctx, owner, ecg.ID(id))
		contract.NoErr(t, fmt.Sprintf("Get %q after deleting \"..\"", id), err)
	}
	_, err = b.ECGs().Get(ctx, owner, "..")
	contract.WantErr(t, `Get ".." after its delete`, err, ecg.ErrNotFound)
}

func testUnknownOwner(t *testing.T, b Backend) {
	ctx := t.Context()
	ghost := identity.UserID(contract.NewID(t))
	u := makeECG(t, ghost, "orphan", lead{"I", walk(70000, 1)})
	contract.WantErr(t, "Add of an unknown owner", b.ECGs().Add(ctx, u.e, u.blocks), identity.ErrUnknownUser)
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return b.Store.ECGs(tx).Add(ctx, u.e, u.blocks)
	})
	contract.WantErr(t, "Add of an unknown owner in a unit of work", err, identity.ErrUnknownUser)
	_, err = b.ECGs().ByKey(ctx, u.e.Key())
	contract.WantErr(t, "ByKey", err, ecg.ErrNotFound)
	if n := blocksLeft(t, b, u.e.Key()); n != 0 {
		t.Fatalf("%d blocks of an unknown owner's ECG were stored", n)
	}
}

// testLockOwner: LockOwner holds the owner until its unit of work ends; another unit of work
// taking it waits until then (the upload attempts that lost a deadlock queue there), and an
// owner that does not exist is refused, on the pool too.
func testLockOwner(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	used, err := b.ECGs().LockOwner(ctx, owner)
	contract.NoErr(t, "LockOwner on the pool", err)
	if used != 0 {
		t.Fatalf("LockOwner of an owner without ECGs = %d bytes, want 0", used)
	}
	ghost := identity.UserID(contract.NewID(t))
	_, err = b.ECGs().LockOwner(ctx, ghost)
	contract.WantErr(t, "LockOwner of an unknown owner", err, identity.ErrUnknownUser)
	err = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		_, err := b.Store.ECGs(tx).LockOwner(ctx, ghost)
		return err
	})
	contract.WantErr(t, "LockOwner of an unknown owner in a unit of work", err, identity.ErrUnknownUser)

	contract.SecondWaits(t, b.UoW, "owner's lock",
		func(ctx context.Context, tx ports.Scope) (func() error, error) {
			_, err := b.Store.ECGs(tx).LockOwner(ctx, owner)
			return func() error { return nil }, err
		},
		func(ctx context.Context, tx ports.Scope) error {
			_, err := b.Store.ECGs(tx).LockOwner(ctx, owner)
			return err
		})
}

// used is what LockOwner counts of owner's ECGs, read on the pool and in a unit of work, which
// must agree.
func used(t *testing.T, b Backend, owner identity.UserID) int64 {
	t.Helper()
	onPool, err := b.ECGs().LockOwner(t.Context(), owner)
	contract.NoErr(t, "LockOwner on the pool", err)
	var inTx int64
	err = b.UoW.Do(t.Context(), func(ctx context.Context, tx ports.Scope) error {
		var err error
		inTx, err = b.Store.ECGs(tx).LockOwner(ctx, owner)
		return err
	})
	contract.NoErr(t, "LockOwner in a unit of work", err)
	if onPool != inTx {
		t.Fatalf("LockOwner: %d bytes on the pool, %d in a unit of work", onPool, inTx)
	}
	return onPool
}

// testUsage: LockOwner counts the packed bytes of the owner's stored ECGs (what the quota
// counts): not another owner's, not a rolled-back add's, nor a duplicate's; a delete frees
// the ECG's, and deleting by owner frees them all (before their blocks are purged).
func testUsage(t *testing.T, b Backend) {
	ctx := t.Context()
	alice, bob := b.NewUser(t), b.NewUser(t)
	one := addECG(t, b, alice, "one", lead{"I", walk(5000, 1)}, lead{"II", wild(70000, 2)})
	two := addECG(t, b, alice, "two", lead{"I", walk(300, 3)})
	other := addECG(t, b, bob, "one", lead{"I", walk(800, 4)})
	want := int64(one.blocks.bytes() + two.blocks.bytes())
	if n := used(t, b, alice); n != want || want <= 0 {
		t.Fatalf("alice's ECGs take %d bytes, want %d (their blocks' packed data)", n, want)
	}
	if n := used(t, b, bob); n != int64(other.blocks.bytes()) {
		t.Fatalf("bob's ECG takes %d bytes, want %d", n, other.blocks.bytes())
	}
	dup := makeECG(t, alice, "one", lead{"I", walk(9000, 5)})
	contract.WantErr(t, "Add of a duplicate id", b.ECGs().Add(ctx, dup.e, dup.blocks), ecgport.ErrDuplicate)
	rolled := makeECG(t, alice, "rolled-back", lead{"I", walk(9000, 6)})
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := b.Store.ECGs(tx).Add(ctx, rolled.e, rolled.blocks); err != nil {
			return err
		}
		return errBoom
	})
	contract.WantErr(t, "Do", err, errBoom)
	if n := used(t, b, alice); n != want {
		t.Fatalf("after a duplicate and a rolled-back add alice's ECGs take %d bytes, want %d", n, want)
	}
	contract.NoErr(t, "Delete", b.ECGs().Delete(ctx, alice, "one"))
	if n := used(t, b, alice); n != int64(two.blocks.bytes()) {
		t.Fatalf("after deleting one, alice's ECGs take %d bytes, want %d", n, two.blocks.bytes())
	}
	contract.NoErr(t, "DeleteByOwner", b.ECGs().DeleteByOwner(ctx, alice))
	if n := used(t, b, alice); n != 0 {
		t.Fatalf("after deleting by owner, alice's ECGs take %d bytes, want 0", n)
	}
	if n := used(t, b, bob); n != int64(other.blocks.bytes()) {
		t.Fatalf("bob's ECG takes %d bytes after alice's went, want %d", n, other.blocks.bytes())
	}
}

// testQuotaConcurrent runs uploads of one owner at once, each checking a quota inside its unit
// of work as the upload does: LockOwner, then Add if the sum stays within the limit. The units
// of work hold on between the check and the add, so without the lock several would pass the
// check on the same sum.
func testQuotaConcurrent(t *testing.T, b Backend) {
	const uploads = 8
	errQuota := errors.New("quota exceeded")
	owner := b.NewUser(t)
	ups := make([]upload, uploads)
	for i := range ups {
		ups[i] = makeECG(t, owner, fmt.Sprintf("rec-%d", i), lead{"I", walk(2000, 1)})
	}
	size := int64(ups[0].blocks.bytes())
	limit := 3*size + size/2 // room for three
	start := make(chan struct{})
	errs := make([]error, uploads)
	var wg sync.WaitGroup
	for i := range uploads {
		wg.Go(func() {
			<-start
			errs[i] = b.UoW.Do(t.Context(), func(ctx context.Context, tx ports.Scope) error {
				repo := b.Store.ECGs(tx)
				used, err := repo.LockOwner(ctx, owner)
				if err != nil {
					return err
				}
				if used+size > limit {
					return errQuota
				}
				time.Sleep(20 * time.Millisecond)
				return repo.Add(ctx, ups[i].e, ups[i].blocks)
			})
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, errQuota):
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	if n := used(t, b, owner); n > limit || ok != 3 || n != int64(ok)*size {
		t.Fatalf("%d uploads stored, %d bytes used; want 3 uploads, %d bytes (limit %d)", ok, n, 3*size, limit)
	}
}

func testAddRollback(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	u := makeECG(t, owner, "rolled-back", lead{"I", walk(140000, 1)}, lead{"II", walk(10, 2)})
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		repo := b.Store.ECGs(tx)
		if err := repo.Add(ctx, u.e, u.blocks); err != nil {
			return err
		}
		// The transaction reads its own writes.
		if _, err := repo.ByKey(ctx, u.e.Key()); err != nil {
			t.Errorf("ByKey inside the transaction: %v", err)
		}
		if page, err := repo.Blocks(ctx, u.e.Key(), ecgport.BlockPos{}, math.MaxInt32); err != nil || len(page) != len(u.blocks.blocks) {
			t.Errorf("Blocks inside the transaction: %d blocks, %v; want %d", len(page), err, len(u.blocks.blocks))
		}
		return errBoom
	})
	contract.WantErr(t, "Do", err, errBoom)
	_, err = b.ECGs().ByKey(ctx, u.e.Key())
	contract.WantErr(t, "ByKey after rollback", err, ecg.ErrNotFound)
	_, err = b.ECGs().Get(ctx, owner, "rolled-back")
	contract.WantErr(t, "Get after rollback", err, ecg.ErrNotFound)
	if n := blocksLeft(t, b, u.e.Key()); n != 0 {
		t.Fatalf("%d blocks left after rollback", n)
	}
	// The id was not left taken, and the same ECG can be stored again.
	contract.NoErr(t, "Add after rollback", b.ECGs().Add(ctx, u.e, u.blocks))
	all, _ := readAll(t, b, u.e.Key(), math.MaxInt32)
	assertBlocks(t, u, all)
}

// testConcurrentAdds runs two uploads of one id in units of work that overlap: each holds its
// transaction open after its Add, so the other's Add meets the first one's uncommitted row.
// Exactly one must win; the other is a duplicate, and nothing of it is stored.
func testConcurrentAdds(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	ups := []upload{
		makeECG(t, owner, "race", lead{"I", walk(70000, 1)}),
		makeECG(t, owner, "race", lead{"I", walk(70000, 2)}),
	}
	start := make(chan struct{})
	errs := make([]error, len(ups))
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Go(func() {
			<-start
			errs[i] = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
				if err := b.Store.ECGs(tx).Add(ctx, u.e, u.blocks); err != nil {
					return err
				}
				time.Sleep(100 * time.Millisecond)
				return nil
			})
		})
	}
	close(start)
	wg.Wait()
	var winner, loser *upload
	for i, err := range errs {
		switch {
		case err == nil && winner == nil:
			winner, loser = &ups[i], &ups[1-i]
		case err == nil:
			t.Fatalf("both adds of one id succeeded")
		case !errors.Is(err, ecgport.ErrDuplicate):
			t.Fatalf("add %d: %v, want nil or ErrDuplicate", i, err)
		}
	}
	if winner == nil {
		t.Fatalf("neither add succeeded: %v", errs)
	}
	got, err := b.ECGs().Get(ctx, owner, "race")
	contract.NoErr(t, "Get", err)
	assertSameECG(t, got, winner.e)
	all, _ := readAll(t, b, got.Key(), math.MaxInt32)
	assertBlocks(t, *winner, all)
	_, err = b.ECGs().ByKey(ctx, loser.e.Key())
	contract.WantErr(t, "ByKey of the loser", err, ecg.ErrNotFound)
	if n := blocksLeft(t, b, loser.e.Key()); n != 0 {
		t.Fatalf("%d blocks of the losing add were stored", n)
	}
}

func testMillionSamples(t *testing.T, b Backend) {
	owner := b.NewUser(t)
	// Small steps (varints), a stretch of values anywhere in the range (raw blocks) and
	// small steps again, then a second lead, so pages cross from lead to lead.
	samples := slices.Concat(walk(400_000, 1), wild(200_000, 2), walk(ecg.MaxSamples-600_000, 3))
	u := addECG(t, b, owner, "long", lead{"II", samples}, lead{"V1", walk(3, 4)})
	if n := len(u.blocks.blocks); n != 17 {
		t.Fatalf("test ECG has %d blocks, want 16 + 1", n)
	}
	got, err := b.ECGs().ByKey(t.Context(), u.e.Key())
	contract.NoErr(t, "ByKey", err)
	if s := got.Leads()[0].Signal; s.Samples != ecg.MaxSamples || s != u.e.Leads()[0].Signal {
		t.Fatalf("lead header = %+v, want %+v", s, u.e.Leads()[0].Signal)
	}
	for i, maxBytes := range []int{0, 100_000, 300_000, u.blocks.bytes(), math.MaxInt32} {
		t.Run(fmt.Sprint(maxBytes), func(t *testing.T) {
			all, calls := readAll(t, b, u.e.Key(), maxBytes)
			if i == 0 {
				assertBlocks(t, u, all) // unpacked and hashed once; then byte for byte
			} else {
				sameBlocks(t, u, all)
			}
			switch {
			case maxBytes == 0 && calls != len(u.blocks.blocks)+1:
				t.Errorf("%d calls with a budget below every block, want one block per call", calls)
			case maxBytes >= u.blocks.bytes() && calls != 2:
				t.Errorf("%d calls with a budget above the whole signal, want 2", calls)
			}
		})
	}
}

func testBlocksFrom(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	// Three leads of 3 blocks each (65536 + 65536 + 18928 samples).
	u := addECG(t, b, owner, "three", lead{"I", walk(150_000, 1)}, lead{"II", walk(150_000, 2)}, lead{"III", walk(150_000, 3)})
	want := u.blocks.blocks
	if len(want) != 9 {
		t.Fatalf("test ECG has %d blocks, want 9", len(want))
	}
	index := func(p ecgport.BlockPos) int {
		for i, blk := range want {
			if blk.Lead > p.Lead || blk.Lead == p.Lead && blk.Seq >= p.Seq {
				return i
			}
		}
		return len(want)
	}
	for _, from := range []ecgport.BlockPos{
		{Lead: 0, Seq: 0}, {Lead: 0, Seq: 2}, {Lead: 1, Seq: 0}, {Lead: 1, Seq: 1}, {Lead: 1, Seq: 2}, {Lead: 1, Seq: 3},
		{Lead: 1, Seq: 99}, {Lead: 2, Seq: 2}, {Lead: 2, Seq: 3}, {Lead: 3, Seq: 0}, {Lead: 99, Seq: 0}, {Lead: -1, Seq: 5},
	} {
		for _, maxBytes := range []int{0, len(want[0].Data), 2*len(want[0].Data) + len(want[2].Data), math.MaxInt32} {
			page, err := b.ECGs().Blocks(ctx, u.e.Key(), from, maxBytes)
			contract.NoErr(t, "Blocks", err)
			first := index(from)
			if first == len(want) {
				if len(page) != 0 {
					t.Errorf("from %+v: %d blocks past the end", from, len(page))
				}
				continue
			}
			// The longest prefix from first that fits, and at least one block.
			n, used := 1, len(want[first].Data)
			for first+n < len(want) && used+len(want[first+n].Data) <= maxBytes {
				used += len(want[first+n].Data)
				n++
			}
			var got, exp []string
			for _, blk := range page {
				got = append(got, fmt.Sprintf("%d/%d", blk.Lead, blk.Seq))
			}
			for _, blk := range want[first : first+n] {
				exp = append(exp, fmt.Sprintf("%d/%d", blk.Lead, blk.Seq))
			}
			if !slices.Equal(got, exp) {
				t.Errorf("from %+v, maxBytes %d: blocks %v, want %v", from, maxBytes, got, exp)
				continue
			}
			for i, blk := range page {
				if w := want[first+i]; blk.Samples != w.Samples || string(blk.Data) != string(w.Data) {
					t.Errorf("from %+v: block %d/%d differs from what was stored", from, blk.Lead, blk.Seq)
				}
			}
		}
	}
	// Another ECG's blocks are not this one's.
	other := addECG(t, b, owner, "other", lead{"I", walk(5, 9)})
	page, err := b.ECGs().Blocks(ctx, other.e.Key(), ecgport.BlockPos{}, math.MaxInt32)
	contract.NoErr(t, "Blocks of another ECG", err)
	if len(page) != 1 || page[0].Samples != 5 {
		t.Fatalf("another ECG's blocks: %d", len(page))
	}
	// An unknown key has none.
	page, err = b.ECGs().Blocks(ctx, ecg.Key(contract.NewID(t)), ecgport.BlockPos{}, math.MaxInt32)
	contract.NoErr(t, "Blocks of an unknown key", err)
	if len(page) != 0 {
		t.Fatalf("an unknown key has %d blocks", len(page))
	}
}

// testManySmallBlocks stores blocks that no SignalWriter would cut (a few samples each), more
// of them than any one batch of rows a repository may write at once.
func testManySmallBlocks(t *testing.T, b Backend) {
	owner := b.NewUser(t)
	u := makeECG(t, owner, "small-blocks", lead{"I", walk(4*250, 1)}, lead{"II", walk(4*60, 2)})
	u.blocks = &memBlocks{}
	for i, l := range u.leads {
		for seq := range len(l.samples) / 4 {
			u.blocks.blocks = append(u.blocks.blocks, ecg.Block{
				Lead: i, Seq: seq, Samples: 4, Data: ecg.AppendPacked(nil, l.samples[4*seq:4*seq+4]),
			})
		}
	}
	contract.NoErr(t, "Add", b.ECGs().Add(t.Context(), u.e, u.blocks))
	for _, maxBytes := range []int{40, 1000, math.MaxInt32} {
		all, _ := readAll(t, b, u.e.Key(), maxBytes)
		assertBlocks(t, u, all)
	}
}

func testScopedByOwner(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, intruder := b.NewUser(t), b.NewUser(t)
	u := addECG(t, b, owner, "mine")
	for _, c := range []struct {
		name  string
		owner identity.UserID
		id    ecg.ID
	}{
		{"another owner's ECG", intruder, "mine"},
		{"a missing ECG", owner, "missing"},
		{"an unknown owner", identity.UserID(contract.NewID(t)), "mine"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.ECGs().Get(ctx, c.owner, c.id)
			contract.WantErr(t, "Get", err, ecg.ErrNotFound)
			contract.WantErr(t, "Delete", b.ECGs().Delete(ctx, c.owner, c.id), ecg.ErrNotFound)
		})
	}
	list, err := b.ECGs().List(ctx, ecgport.ListQuery{Owner: intruder, Limit: 10})
	contract.NoErr(t, "List", err)
	if len(list.ECGs) != 0 || list.More {
		t.Fatalf("another owner lists %d ECGs (more: %v)", len(list.ECGs), list.More)
	}
	contract.NoErr(t, "DeleteByOwner of another owner", b.ECGs().DeleteByOwner(ctx, intruder))
	n, err := b.ECGs().PurgeOwner(ctx, intruder, 100)
	contract.NoErr(t, "PurgeOwner of another owner", err)
	if n != 0 {
		t.Fatalf("PurgeOwner of another owner removed %d rows", n)
	}
	got, err := b.ECGs().Get(ctx, owner, "mine")
	contract.NoErr(t, "Get by the owner", err)
	assertSameECG(t, got, u.e)
	if blocksLeft(t, b, u.e.Key()) != 1 {
		t.Fatalf("the owner's blocks are gone")
	}
}

// testMalformed looks up ids and keys that storage could choke on (invalid UTF-8, longer than
// any column, non-ASCII, empty, characters ids do not allow): they come straight from URLs and
// job payloads, and must read as "not found", never as a storage error.
func testMalformed(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	u := addECG(t, b, owner, "real")
	for _, s := range []string{"\xff\xfe\xfd", strings.Repeat("7", 100), "é-ü-😀", "", "a b", "re%", "real\x00", "REAL"} {
		t.Run(fmt.Sprintf("%q", s), func(t *testing.T) {
			_, err := b.ECGs().Get(ctx, owner, ecg.ID(s))
			contract.WantErr(t, "Get", err, ecg.ErrNotFound)
			contract.WantErr(t, "Delete", b.ECGs().Delete(ctx, owner, ecg.ID(s)), ecg.ErrNotFound)
			_, err = b.ECGs().ByKey(ctx, ecg.Key(s))
			contract.WantErr(t, "ByKey", err, ecg.ErrNotFound)
			page, err := b.ECGs().Blocks(ctx, ecg.Key(s), ecgport.BlockPos{}, 1000)
			contract.NoErr(t, "Blocks", err)
			rs, err := b.ECGs().Results(ctx, ecg.Key(s))
			contract.NoErr(t, "Results", err)
			if len(page)+len(rs) != 0 {
				t.Errorf("%d blocks and %d results", len(page), len(rs))
			}
			contract.WantErr(t, "SaveResults", b.ECGs().SaveResults(ctx, ecg.Key(s), nil, time.Now()), ecg.ErrNotFound)
			contract.NoErr(t, "MarkFailed", b.ECGs().MarkFailed(ctx, ecg.Key(s), "no", time.Now()))
			list, err := b.ECGs().List(ctx, ecgport.ListQuery{Owner: identity.UserID(s), Limit: 10})
			contract.NoErr(t, "List of a malformed owner", err)
			if len(list.ECGs) != 0 {
				t.Errorf("List of a malformed owner returned %d ECGs", len(list.ECGs))
			}
			_, err = b.ECGs().List(ctx, ecgport.ListQuery{Owner: owner, Before: ecg.Key(s), Limit: 10})
			contract.NoErr(t, "List before a malformed key", err)
		})
	}
	got, err := b.ECGs().Get(ctx, owner, "real")
	contract.NoErr(t, "Get", err)
	assertSameECG(t, got, u.e)
}

func testListPaging(t *testing.T, b Backend) {
	ctx := t.Context()
	a, other := b.NewUser(t), b.NewUser(t)
	var mine []ecg.Key
	for i := range 7 {
		mine = append(mine, addECG(t, b, a, fmt.Sprintf("rec-%d", i)).e.Key())
		// Interleave another owner's ECGs, which must never show up.
		addECG(t, b, other, fmt.Sprintf("rec-%d", i))
	}
	want := contract.NewestFirst(mine)

	for _, limit := range []int{1, 3, 7, 100} {
		var (
			got    []ecg.Key
			before ecg.Key
		)
		for pages := 0; ; pages++ {
			if pages > len(mine) {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			list, err := b.ECGs().List(ctx, ecgport.ListQuery{Owner: a, Before: before, Limit: limit})
			contract.NoErr(t, "List", err)
			if len(list.ECGs) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(list.ECGs))
			}
			for _, e := range list.ECGs {
				if e.Owner() != a {
					t.Fatalf("limit %d: listed an ECG of %s", limit, e.Owner())
				}
			}
			got = append(got, keysOf(list.ECGs)...)
			if wantMore := len(got) < len(want); list.More != wantMore {
				t.Fatalf("limit %d, page %d: more = %v, want %v", limit, pages, list.More, wantMore)
			}
			if !list.More {
				break
			}
			before = list.ECGs[len(list.ECGs)-1].Key()
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: pages gave %v, want each of %v once, newest first", limit, got, want)
		}
	}
	// A cursor in the middle starts strictly below it.
	list, err := b.ECGs().List(ctx, ecgport.ListQuery{Owner: a, Before: want[2], Limit: 2})
	contract.NoErr(t, "List", err)
	if keys := keysOf(list.ECGs); !slices.Equal(keys, want[3:5]) || !list.More {
		t.Errorf("page after %s = %v (more %v), want %v (more)", want[2], keys, list.More, want[3:5])
	}
	// Listed ECGs are whole.
	e, err := b.ECGs().ByKey(ctx, want[0])
	contract.NoErr(t, "ByKey", err)
	list, err = b.ECGs().List(ctx, ecgport.ListQuery{Owner: a, Limit: 1})
	contract.NoErr(t, "List", err)
	assertSameECG(t, list.ECGs[0], e)
}

func testDelete(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	gone := addECG(t, b, owner, "gone", lead{"I", walk(140_000, 1)}, lead{"II", walk(10, 2)})
	kept := addECG(t, b, owner, "kept", lead{"I", walk(70_000, 3)})
	rs := []ecg.Result{{Analysis: "summary", Version: 1, Leads: [][]ecg.Measure{{{Name: "min", Value: ecg.Int(-3)}}, {{Name: "min", Value: ecg.Int(4)}}}}}
	for _, u := range []upload{gone, kept} {
		contract.NoErr(t, "SaveResults", b.ECGs().SaveResults(ctx, u.e.Key(), rs, time.Now()))
	}

	contract.NoErr(t, "Delete", b.ECGs().Delete(ctx, owner, "gone"))
	_, err := b.ECGs().Get(ctx, owner, "gone")
	contract.WantErr(t, "Get after Delete", err, ecg.ErrNotFound)
	_, err = b.ECGs().ByKey(ctx, gone.e.Key())
	contract.WantErr(t, "ByKey after Delete", err, ecg.ErrNotFound)
	if n := blocksLeft(t, b, gone.e.Key()); n != 0 {
		t.Errorf("%d blocks left after Delete", n)
	}
	if n := len(storedResults(t, b, gone.e.Key())); n != 0 {
		t.Errorf("%d results left after Delete", n)
	}
	contract.WantErr(t, "second Delete", b.ECGs().Delete(ctx, owner, "gone"), ecg.ErrNotFound)
	// Nothing was left for the purge.
	n, err := b.ECGs().PurgeOwner(ctx, owner, 100)
	contract.NoErr(t, "PurgeOwner", err)
	if n != 0 {
		t.Errorf("PurgeOwner after Delete removed %d rows", n)
	}
	// The other ECG is whole.
	all, _ := readAll(t, b, kept.e.Key(), math.MaxInt32)
	assertBlocks(t, kept, all)
	if got := resultsText(storedResults(t, b, kept.e.Key())); got != resultsText(rs) {
		t.Errorf("the kept ECG's results = %s, want %s", got, resultsText(rs))
	}
	// The id is free again.
	addECG(t, b, owner, "gone")

	// In a unit of work that rolls back, nothing is deleted.
	err = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := b.Store.ECGs(tx).Delete(ctx, owner, "kept"); err != nil {
			return err
		}
		return errBoom
	})
	contract.WantErr(t, "Do", err, errBoom)
	all, _ = readAll(t, b, kept.e.Key(), math.MaxInt32)
	assertBlocks(t, kept, all)
	if got := resultsText(storedResults(t, b, kept.e.Key())); got != resultsText(rs) {
		t.Errorf("results after a rolled-back Delete = %s, want %s", got, resultsText(rs))
	}
}

func testDeleteByOwnerAndPurge(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, other := b.NewUser(t), b.NewUser(t)
	var ups []upload
	rows := 0
	rs := []ecg.Result{
		{Analysis: "summary", Version: 1, Leads: [][]ecg.Measure{{{Name: "max", Value: ecg.Int(1)}}, {{Name: "max", Value: ecg.Int(2)}}}},
		{Analysis: "zero_crossings", Version: 1, Leads: [][]ecg.Measure{{{Name: "zero_crossings", Value: ecg.Int(0)}}, {}}},
	}
	for i := range 3 {
		u := addECG(t, b, owner, fmt.Sprintf("rec-%d", i), lead{"I", walk(70_000, uint64(i))}, lead{"II", walk(70_000, uint64(i+10))})
		contract.NoErr(t, "SaveResults", b.ECGs().SaveResults(ctx, u.e.Key(), rs, time.Now()))
		ups = append(ups, u)
		rows += len(u.blocks.blocks) + len(rs)
	}
	if rows != 18 {
		t.Fatalf("test data has %d rows to purge, want 18", rows)
	}
	kept := addECG(t, b, other, "rec-0")
	contract.NoErr(t, "SaveResults", b.ECGs().SaveResults(ctx, kept.e.Key(), rs[:1], time.Now()))

	// Nothing is an orphan while the ECGs exist.
	n, err := b.ECGs().PurgeOwner(ctx, owner, 100)
	contract.NoErr(t, "PurgeOwner before DeleteByOwner", err)
	if n != 0 {
		t.Fatalf("PurgeOwner removed %d rows of existing ECGs", n)
	}

	// In a unit of work, as the user deletion runs it.
	err = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return b.Store.ECGs(tx).DeleteByOwner(ctx, owner)
	})
	contract.NoErr(t, "DeleteByOwner", err)
	list, err := b.ECGs().List(ctx, ecgport.ListQuery{Owner: owner, Limit: 10})
	contract.NoErr(t, "List", err)
	if len(list.ECGs) != 0 {
		t.Fatalf("%d ECGs listed after DeleteByOwner", len(list.ECGs))
	}
	for _, u := range ups {
		_, err := b.ECGs().ByKey(ctx, u.e.Key())
		contract.WantErr(t, "ByKey after DeleteByOwner", err, ecg.ErrNotFound)
		_, err = b.ECGs().Get(ctx, owner, u.e.ID())
		contract.WantErr(t, "Get after DeleteByOwner", err, ecg.ErrNotFound)
		contract.WantErr(t, "SaveResults after DeleteByOwner", b.ECGs().SaveResults(ctx, u.e.Key(), rs, time.Now()), ecg.ErrNotFound)
	}
	// Blocks and results stay until the purge.
	if n := blocksLeft(t, b, ups[0].e.Key()); n != len(ups[0].blocks.blocks) {
		t.Fatalf("%d blocks left after DeleteByOwner, want all %d until PurgeOwner", n, len(ups[0].blocks.blocks))
	}

	var batches []int
	for range rows + 2 {
		n, err := b.ECGs().PurgeOwner(ctx, owner, 5)
		contract.NoErr(t, "PurgeOwner", err)
		batches = append(batches, n)
		if n == 0 {
			break
		}
	}
	// How many rows the blocks take is the storage's business; every call but the last two
	// removes the whole limit, and the last removes nothing.
	if len(batches) < 2 || batches[len(batches)-1] != 0 || batches[len(batches)-2] < 1 || batches[len(batches)-2] > 5 {
		t.Fatalf("PurgeOwner removed %v, want full batches of 5, then 1 to 5, then 0", batches)
	}
	for _, n := range batches[:len(batches)-2] {
		if n != 5 {
			t.Fatalf("PurgeOwner removed %v, want full batches of 5, then 1 to 5, then 0", batches)
		}
	}
	for _, u := range ups {
		if n := blocksLeft(t, b, u.e.Key()); n != 0 {
			t.Errorf("%d blocks left after the purge", n)
		}
		if n := len(storedResults(t, b, u.e.Key())); n != 0 {
			t.Errorf("%d results left after the purge", n)
		}
	}
	// The other owner's ECG is whole.
	all, _ := readAll(t, b, kept.e.Key(), math.MaxInt32)
	assertBlocks(t, kept, all)
	if n := len(storedResults(t, b, kept.e.Key())); n != 1 {
		t.Errorf("the other owner's ECG has %d results, want 1", n)
	}
	// Nothing or a bad limit removes nothing.
	for _, limit := range []int{0, -1, 10} {
		n, err := b.ECGs().PurgeOwner(ctx, owner, limit)
		contract.NoErr(t, "PurgeOwner", err)
		if n != 0 {
			t.Errorf("PurgeOwner(%d) with nothing left removed %d", limit, n)
		}
	}
}

func testUserDeletionCascades(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, other := b.NewUser(t), b.NewUser(t)
	u := addECG(t, b, owner, "rec", lead{"I", walk(70_000, 1)})
	rs := []ecg.Result{{Analysis: "summary", Version: 1, Leads: [][]ecg.Measure{{{Name: "max", Value: ecg.Int(1)}}}}}
	contract.NoErr(t, "SaveResults", b.ECGs().SaveResults(ctx, u.e.Key(), rs, time.Now()))
	kept := addECG(t, b, other, "rec")

	b.DeleteUser(t, owner)
	_, err := b.ECGs().ByKey(ctx, u.e.Key())
	contract.WantErr(t, "ByKey of a deleted user's ECG", err, ecg.ErrNotFound)
	_, err = b.ECGs().Get(ctx, owner, "rec")
	contract.WantErr(t, "Get of a deleted user's ECG", err, ecg.ErrNotFound)
	again := makeECG(t, owner, "rec-2")
	contract.WantErr(t, "Add for a deleted user", b.ECGs().Add(ctx, again.e, again.blocks), identity.ErrUnknownUser)

	total := 0
	for range 10 {
		n, err := b.ECGs().PurgeOwner(ctx, owner, 1)
		contract.NoErr(t, "PurgeOwner", err)
		if n == 0 {
			break
		}
		total += n
	}
	if total < 2 {
		t.Fatalf("purged %d rows after the user's deletion, want its blocks and its result", total)
	}
	if blocksLeft(t, b, u.e.Key())+len(storedResults(t, b, u.e.Key())) != 0 {
		t.Fatalf("rows left after the purge")
	}
	got, err := b.ECGs().Get(ctx, other, "rec")
	contract.NoErr(t, "Get of another user's ECG", err)
	assertSameECG(t, got, kept.e)
}

func testSaveResults(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	u := addECG(t, b, owner, "rec", lead{"I", walk(10, 1)}, lead{"II", walk(10, 2)})
	first := []ecg.Result{
		{Analysis: "zero_crossings", Version: 1, Leads: [][]ecg.Measure{
			{{Name: "zero_crossings", Value: ecg.Int(12)}},
			{{Name: "zero_crossings", Value: ecg.Int(0)}},
		}},
		{Analysis: "summary", Version: 3, Leads: [][]ecg.Measure{
			{{Name: "min", Value: ecg.Int(-12)}, {Name: "max", Value: ecg.Int(40)}, {Name: "mean", Value: num(t, 1.0/3)}},
			{{Name: "min", Value: ecg.Int(0)}, {Name: "max", Value: ecg.Int(0)}, {Name: "mean", Value: num(t, 0)}},
		}},
	}
	at := time.Date(2026, 2, 3, 4, 5, 6, 789012345, time.FixedZone("CET", 3600))
	contract.NoErr(t, "SaveResults", b.ECGs().SaveResults(ctx, u.e.Key(), first, at))
	got, err := b.ECGs().ByKey(ctx, u.e.Key())
	contract.NoErr(t, "ByKey", err)
	if got.Status() != ecg.StatusDone || got.Failure() != "" {
		t.Fatalf("after SaveResults: %s %q, want done", got.Status(), got.Failure())
	}
	contract.SameInstant(t, "analysed_at", got.AnalysedAt(), at)
	if gotText := resultsText(storedResults(t, b, u.e.Key())); gotText != resultsText(first) {
		t.Fatalf("results =\n%s\nwant\n%s", gotText, resultsText(first))
	}
	// Measures keep their order within a lead, whatever the results' order.
	for _, r := range storedResults(t, b, u.e.Key()) {
		if r.Analysis == "summary" {
			var names []string
			for _, m := range r.Leads[0] {
				names = append(names, m.Name)
			}
			if fmt.Sprint(names) != "[min max mean]" {
				t.Fatalf("summary measures in order %v", names)
			}
		}
	}

	// A second save replaces every result: only its own are left.
	second := []ecg.Result{{Analysis: "zero_crossings", Version: 2, Leads: [][]ecg.Measure{
		{{Name: "zero_crossings", Value: ecg.Int(13)}},
		{{Name: "zero_crossings", Value: ecg.Int(1)}},
	}}}
	later := at.Add(time.Hour)
	// Inside a unit of work, as a job might.
	err = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return b.Store.ECGs(tx).SaveResults(ctx, u.e.Key(), second, later)
	})
	contract.NoErr(t, "second SaveResults", err)
	if gotText := resultsText(storedResults(t, b, u.e.Key())); gotText != resultsText(second) {
		t.Fatalf("results after the second save =\n%s\nwant\n%s", gotText, resultsText(second))
	}
	got, err = b.ECGs().ByKey(ctx, u.e.Key())
	contract.NoErr(t, "ByKey", err)
	contract.SameInstant(t, "analysed_at", got.AnalysedAt(), later)

	// No results at all is a result too.
	contract.NoErr(t, "SaveResults of none", b.ECGs().SaveResults(ctx, u.e.Key(), nil, later))
	if rs := storedResults(t, b, u.e.Key()); len(rs) != 0 {
		t.Fatalf("%d results after saving none", len(rs))
	}

	// A failed ECG analysed again is done, its failure gone.
	f := addECG(t, b, owner, "failed-first")
	contract.NoErr(t, "MarkFailed", b.ECGs().MarkFailed(ctx, f.e.Key(), "broke", at))
	contract.NoErr(t, "SaveResults of a failed ECG", b.ECGs().SaveResults(ctx, f.e.Key(), second[:1], later))
	got, err = b.ECGs().ByKey(ctx, f.e.Key())
	contract.NoErr(t, "ByKey", err)
	if got.Status() != ecg.StatusDone || got.Failure() != "" {
		t.Fatalf("a failed ECG after SaveResults: %s %q, want done", got.Status(), got.Failure())
	}

	missing := ecg.Key(contract.NewID(t))
	contract.WantErr(t, "SaveResults of an unknown key", b.ECGs().SaveResults(ctx, missing, first, at), ecg.ErrNotFound)
	if rs := storedResults(t, b, missing); len(rs) != 0 {
		t.Fatalf("SaveResults of an unknown key stored %d results", len(rs))
	}
}

func testNumbersRoundTrip(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	u := addECG(t, b, owner, "numbers")
	values := []ecg.Number{
		ecg.Int(0), ecg.Int(-12), ecg.Int(math.MaxInt64), ecg.Int(math.MinInt64),
		num(t, 0.333), num(t, 1.0/3), num(t, -2.5), num(t, 1e-7), num(t, 123456789.125),
		num(t, math.SmallestNonzeroFloat64), num(t, math.MaxFloat64), num(t, math.Copysign(0, -1)),
		parsed(t, "0.333"), parsed(t, "1e-7"), parsed(t, "-12"), parsed(t, "1.50"), parsed(t, "2E+10"), parsed(t, "-0"),
	}
	var measures []ecg.Measure
	for i, v := range values {
		measures = append(measures, ecg.Measure{Name: fmt.Sprintf("m%02d", i), Value: v})
	}
	rs := []ecg.Result{{Analysis: "numbers", Version: 1, Leads: [][]ecg.Measure{measures, {}, {{Name: "naïve \"quoted\" <名>", Value: ecg.Int(1)}}}}}
	contract.NoErr(t, "SaveResults", b.ECGs().SaveResults(ctx, u.e.Key(), rs, time.Now()))
	got := storedResults(t, b, u.e.Key())
	if len(got) != 1 || len(got[0].Leads) != 3 || len(got[0].Leads[0]) != len(values) {
		t.Fatalf("results = %s", resultsText(got))
	}
	for i, m := range got[0].Leads[0] {
		if m.Name != measures[i].Name || m.Value.String() != values[i].String() {
			t.Errorf("measure %d = %s %q, want %s %q", i, m.Name, m.Value.String(), measures[i].Name, values[i].String())
		}
	}
	if len(got[0].Leads[1]) != 0 || got[0].Leads[2][0].Name != "naïve \"quoted\" <名>" {
		t.Errorf("results = %s, want %s", resultsText(got), resultsText(rs))
	}
}

// testResultsRefused checks that results storage could not keep exactly are refused the same
// way by every backend, and leave the ECG as it was.
func testResultsRefused(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	u := addECG(t, b, owner, "rec")
	one := [][]ecg.Measure{{{Name: "m", Value: ecg.Int(1)}}}
	var manyNames []ecg.Result
	for i := range 40 {
		manyNames = append(manyNames, ecg.Result{Analysis: fmt.Sprintf("analysis_with_a_long_name_%02d", i), Version: i, Leads: one})
	}
	for name, rs := range map[string][]ecg.Result{
		"two results of one analysis": {{Analysis: "a", Version: 1, Leads: one}, {Analysis: "a", Version: 2, Leads: one}},
		"an empty analysis name":      {{Analysis: "", Version: 1, Leads: one}},
		"a name over 64 bytes":        {{Analysis: strings.Repeat("a", 65), Version: 1, Leads: one}},
		"an unset number":             {{Analysis: "a", Version: 1, Leads: [][]ecg.Measure{{{Name: "m"}}}}},
		"a fingerprint over 1000":     manyNames,
	} {
		t.Run(name, func(t *testing.T) {
			if err := b.ECGs().SaveResults(ctx, u.e.Key(), rs, time.Now()); err == nil {
				t.Fatal("SaveResults succeeded")
			}
			got, err := b.ECGs().ByKey(ctx, u.e.Key())
			contract.NoErr(t, "ByKey", err)
			if got.Status() != ecg.StatusPending {
				t.Errorf("status %s after a refused save", got.Status())
			}
			if n := len(storedResults(t, b, u.e.Key())); n != 0 {
				t.Errorf("%d results stored by a refused save", n)
			}
		})
	}
	// The longest name fits.
	rs := []ecg.Result{{Analysis: strings.Repeat("a", 64), Version: math.MaxInt32, Leads: one}}
	contract.NoErr(t, "SaveResults with a 64-byte name", b.ECGs().SaveResults(ctx, u.e.Key(), rs, time.Now()))
	if got := resultsText(storedResults(t, b, u.e.Key())); got != resultsText(rs) {
		t.Errorf("results = %s, want %s", got, resultsText(rs))
	}
}

func testSaveResultsRollback(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	u := addECG(t, b, owner, "rec")
	old := []ecg.Result{{Analysis: "summary", Version: 1, Leads: [][]ecg.Measure{{{Name: "max", Value: ecg.Int(7)}}}}}
	contract.NoErr(t, "SaveResults", b.ECGs().SaveResults(ctx, u.e.Key(), old, time.Now()))
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		rs := []ecg.Result{{Analysis: "other", Version: 9, Leads: [][]ecg.Measure{{{Name: "x", Value: ecg.Int(1)}}}}}
		if err := b.Store.ECGs(tx).SaveResults(ctx, u.e.Key(), rs, time.Now()); err != nil {
			return err
		}
		return errBoom
	})
	contract.WantErr(t, "Do", err, errBoom)
	if got := resultsText(storedResults(t, b, u.e.Key())); got != resultsText(old) {
		t.Fatalf("results after a rolled-back save = %s, want %s", got, resultsText(old))
	}
	keys, err := b.ECGs().Outdated(ctx, "", []ecgport.AnalysisVersion{{Name: "summary", Version: 1}}, 10)
	contract.NoErr(t, "Outdated", err)
	if len(keys) != 0 {
		t.Fatalf("the rolled-back save changed the fingerprint: outdated %v", keys)
	}
}

func testMarkFailed(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	pending := addECG(t, b, owner, "pending")
	done := addECG(t, b, owner, "done")
	at := time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)
	rs := []ecg.Result{{Analysis: "summary", Version: 1, Leads: [][]ecg.Measure{{{Name: "max", Value: ecg.Int(7)}}}}}
	contract.NoErr(t, "SaveResults", b.ECGs().SaveResults(ctx, done.e.Key(), rs, at))

	contract.NoErr(t, "MarkFailed of a pending ECG", b.ECGs().MarkFailed(ctx, pending.e.Key(), "the samples would not unpack", at))
	got, err := b.ECGs().ByKey(ctx, pending.e.Key())
	contract.NoErr(t, "ByKey", err)
	if got.Status() != ecg.StatusFailed || got.Failure() != "the samples would not unpack" {
		t.Fatalf("after MarkFailed: %s %q, want failed with the reason", got.Status(), got.Failure())
	}
	contract.SameInstant(t, "analysed_at", got.AnalysedAt(), at)

	// A failed ECG keeps its first failure.
	contract.NoErr(t, "MarkFailed again", b.ECGs().MarkFailed(ctx, pending.e.Key(), "second", at.Add(time.Hour)))
	got, err = b.ECGs().ByKey(ctx, pending.e.Key())
	contract.NoErr(t, "ByKey", err)
	if got.Failure() != "the samples would not unpack" {
		t.Errorf("a second MarkFailed changed the failure to %q", got.Failure())
	}
	contract.SameInstant(t, "analysed_at", got.AnalysedAt(), at)

	// A done ECG is left as it is (a run that finished first won).
	contract.NoErr(t, "MarkFailed of a done ECG", b.ECGs().MarkFailed(ctx, done.e.Key(), "late", at.Add(time.Hour)))
	got, err = b.ECGs().ByKey(ctx, done.e.Key())
	contract.NoErr(t, "ByKey", err)
	if got.Status() != ecg.StatusDone || got.Failure() != "" {
		t.Errorf("a done ECG after MarkFailed: %s %q", got.Status(), got.Failure())
	}
	contract.SameInstant(t, "analysed_at", got.AnalysedAt(), at)
	if got := resultsText(storedResults(t, b, done.e.Key())); got != resultsText(rs) {
		t.Errorf("a done ECG's results after MarkFailed = %s", got)
	}

	// An unknown key (an ECG deleted meanwhile) is no error.
	contract.NoErr(t, "MarkFailed of an unknown key", b.ECGs().MarkFailed(ctx, ecg.Key(contract.NewID(t)), "gone", at))
}

func testFailureReason(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	long := "a" + strings.Repeat("é", 1000) // 2001 bytes; 999 fit on a character boundary
	for _, c := range []struct{ name, reason, want string }{
		{"long", long, long[:999]},
		{"exactly 1000 bytes", strings.Repeat("x", 1000), strings.Repeat("x", 1000)},
		{"4-byte characters", strings.Repeat("😀", 300), strings.Repeat("😀", 250)},
		{"invalid UTF-8", "bad \xff\xfe byte", "bad \uFFFD byte"},
		{"empty", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := addECG(t, b, owner, strings.ReplaceAll(c.name, " ", "-"))
			contract.NoErr(t, "MarkFailed", b.ECGs().MarkFailed(ctx, u.e.Key(), c.reason, time.Now()))
			got, err := b.ECGs().ByKey(ctx, u.e.Key())
			contract.NoErr(t, "ByKey", err)
			if got.Failure() != c.want || !utf8.ValidString(got.Failure()) {
				t.Errorf("failure = %q (%d bytes), want %q (%d bytes)", trim(got.Failure()), len(got.Failure()), trim(c.want), len(c.want))
			}
			if got.Status() != ecg.StatusFailed {
				t.Errorf("status = %s", got.Status())
			}
		})
	}
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:20] + "..." + s[len(s)-20:]
	}
	return s
}

func testOutdated(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, other := b.NewUser(t), b.NewUser(t)
	one := [][]ecg.Measure{{{Name: "m", Value: ecg.Int(1)}}}
	current := []ecgport.AnalysisVersion{{Name: "zero_crossings", Version: 2}, {Name: "summary", Version: 1}}
	res := func(nv ...any) []ecg.Result {
		var out []ecg.Result
		for i := 0; i < len(nv); i += 2 {
			name, _ := nv[i].(string)
			version, _ := nv[i+1].(int)
			out = append(out, ecg.Result{Analysis: name, Version: version, Leads: one})
		}
		return out
	}
	type state struct {
		name    string
		results []ecg.Result // nil: pending; saved when set
		failed  bool
		want    bool
	}
	states := []state{
		{name: "old version", results: res("summary", 1, "zero_crossings", 1), want: true},
		{name: "current", results: res("summary", 1, "zero_crossings", 2)},
		{name: "pending"},
		{name: "failed", failed: true, want: true},
		{name: "missing an analysis", results: res("zero_crossings", 2), want: true},
		{name: "current, saved in another order", results: res("zero_crossings", 2, "summary", 1)},
		{name: "an extra analysis", results: res("summary", 1, "zero_crossings", 2, "retired", 1), want: true},
		{name: "newer version", results: res("summary", 2, "zero_crossings", 2), want: true},
		{name: "no results", results: []ecg.Result{}, want: true},
	}
	var want, all []ecg.Key
	for i, s := range states {
		who := owner
		if i%2 == 1 {
			who = other // Outdated spans every owner
		}
		u := addECG(t, b, who, fmt.Sprintf("s%d", i))
		all = append(all, u.e.Key())
		switch {
		case s.failed:
			contract.NoErr(t, "MarkFailed", b.ECGs().MarkFailed(ctx, u.e.Key(), "failed", time.Now()))
		case s.results != nil:
			contract.NoErr(t, "SaveResults", b.ECGs().SaveResults(ctx, u.e.Key(), s.results, time.Now()))
		}
		if s.want {
			want = append(want, u.e.Key())
		}
	}
	names := func(keys []ecg.Key) []string {
		var out []string
		for _, k := range keys {
			out = append(out, states[slices.Index(all, k)].name)
		}
		return out
	}

	for _, limit := range []int{1, 2, 3, 100} {
		var (
			got   []ecg.Key
			after ecg.Key
		)
		for range len(states) + 1 {
			keys, err := b.ECGs().Outdated(ctx, after, current, limit)
			contract.NoErr(t, "Outdated", err)
			if len(keys) > limit {
				t.Fatalf("limit %d: %d keys", limit, len(keys))
			}
			if len(keys) == 0 {
				break
			}
			got = append(got, keys...)
			after = keys[len(keys)-1]
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: outdated %v, want %v", limit, names(got), names(want))
		}
	}
	// The current analyses in another order are the same analyses.
	keys, err := b.ECGs().Outdated(ctx, "", []ecgport.AnalysisVersion{current[1], current[0]}, 100)
	contract.NoErr(t, "Outdated", err)
	if !slices.Equal(keys, want) {
		t.Errorf("current in another order: outdated %v, want %v", names(keys), names(want))
	}
	// Starting after a key that is not one of them.
	keys, err = b.ECGs().Outdated(ctx, all[1], current, 100)
	contract.NoErr(t, "Outdated", err)
	if !slices.Equal(keys, want[1:]) {
		t.Errorf("after %q: outdated %v, want %v", states[1].name, names(keys), names(want[1:]))
	}
	// Without analyses, only ECGs with stored results are outdated.
	keys, err = b.ECGs().Outdated(ctx, "", nil, 100)
	contract.NoErr(t, "Outdated", err)
	var withResults []ecg.Key
	for i, s := range states {
		if len(s.results) > 0 {
			withResults = append(withResults, all[i])
		}
	}
	if !slices.Equal(keys, withResults) {
		t.Errorf("no current analyses: outdated %v, want %v", names(keys), names(withResults))
	}
	// A limit of 0 asks for nothing.
	keys, err = b.ECGs().Outdated(ctx, "", current, 0)
	contract.NoErr(t, "Outdated", err)
	if len(keys) != 0 {
		t.Errorf("limit 0: %d keys", len(keys))
	}
}

func testByKeys(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, other := b.NewUser(t), b.NewUser(t)
	u1 := addECG(t, b, owner, "one", lead{"I", walk(10, 1)})
	u2 := addECG(t, b, other, "two", lead{"I", walk(5, 2)}, lead{"II", walk(5, 3)})
	u3 := addECG(t, b, owner, "three")
	contract.NoErr(t, "MarkFailed", b.ECGs().MarkFailed(ctx, u3.e.Key(), "broke", time.Now()))
	missing := ecg.Key(contract.NewID(t))
	got, err := b.ECGs().ByKeys(ctx, []ecg.Key{u3.e.Key(), missing, u1.e.Key(), u2.e.Key(), u1.e.Key()})
	contract.NoErr(t, "ByKeys", err)
	want := []upload{u1, u2, u3}
	slices.SortFunc(want, func(a, b upload) int { return strings.Compare(string(a.e.Key()), string(b.e.Key())) })
	if len(got) != len(want) {
		t.Fatalf("ByKeys returned %d ECGs, want %d (each stored key once, the missing one left out)", len(got), len(want))
	}
	for i, w := range want {
		one, err := b.ECGs().ByKey(ctx, w.e.Key())
		contract.NoErr(t, "ByKey", err)
		if got[i].Key() != w.e.Key() || got[i].Owner() != one.Owner() || got[i].Status() != one.Status() ||
			!got[i].SameContent(one) || len(got[i].Leads()) != len(one.Leads()) {
			t.Errorf("ByKeys[%d] = %s of %s (%s), want what ByKey reads: %s of %s (%s)",
				i, got[i].Key(), got[i].Owner(), got[i].Status(), one.Key(), one.Owner(), one.Status())
		}
	}
	none, err := b.ECGs().ByKeys(ctx, nil)
	contract.NoErr(t, "ByKeys of none", err)
	if len(none) != 0 {
		t.Errorf("ByKeys of no keys returned %d ECGs", len(none))
	}
}

func testBlocksOf(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	// Two blocks in the first lead (more than MaxBlockSamples samples), one in each other.
	u1 := addECG(t, b, owner, "long", lead{"I", walk(ecg.MaxBlockSamples+10, 1)}, lead{"II", wild(7, 2)})
	u2 := addECG(t, b, owner, "short", lead{"I", walk(3, 3)}, lead{"II", walk(4, 4)}, lead{"III", walk(5, 5)})
	untouched := addECG(t, b, owner, "untouched")
	missing := ecg.Key(contract.NewID(t))
	got, err := b.ECGs().BlocksOf(ctx, []ecg.Key{u2.e.Key(), missing, u1.e.Key()})
	contract.NoErr(t, "BlocksOf", err)
	if len(got) != 2 {
		t.Fatalf("BlocksOf returned blocks of %d ECGs, want 2 (none for a missing key, none for one not asked)", len(got))
	}
	if _, ok := got[untouched.e.Key()]; ok {
		t.Fatal("BlocksOf returned the blocks of an ECG it was not asked for")
	}
	for _, u := range []upload{u1, u2} {
		blocks := got[u.e.Key()]
		if len(blocks) != len(u.blocks.blocks) {
			t.Fatalf("%s: %d blocks, want %d", u.e.ID(), len(blocks), len(u.blocks.blocks))
		}
		for i, w := range u.blocks.blocks {
			g := blocks[i]
			if g.Lead != w.Lead || g.Seq != w.Seq || g.Samples != w.Samples || !bytes.Equal(g.Data, w.Data) {
				t.Fatalf("%s block %d = lead %d seq %d, %d samples, %d bytes; want lead %d seq %d, %d samples, %d bytes (same data)",
					u.e.ID(), i, g.Lead, g.Seq, g.Samples, len(g.Data), w.Lead, w.Seq, w.Samples, len(w.Data))
			}
		}
	}
}

func testSaveFirstResults(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, other := b.NewUser(t), b.NewUser(t)
	p1 := addECG(t, b, owner, "p1", lead{"I", walk(4, 1)}, lead{"II", walk(4, 2)})
	p2 := addECG(t, b, other, "p2")
	done := addECG(t, b, owner, "done")
	failed := addECG(t, b, owner, "failed")
	missing := ecg.Key(contract.NewID(t))
	earlier := []ecg.Result{{Analysis: "summary", Version: 1, Leads: [][]ecg.Measure{{{Name: "max", Value: ecg.Int(7)}}}}}
	contract.NoErr(t, "SaveResults", b.ECGs().SaveResults(ctx, done.e.Key(), earlier, time.Now()))
	contract.NoErr(t, "MarkFailed", b.ECGs().MarkFailed(ctx, failed.e.Key(), "broke", time.Now()))

	two := []ecg.Result{
		{Analysis: "zero_crossings", Version: 1, Leads: [][]ecg.Measure{
			{{Name: "zero_crossings", Value: ecg.Int(3)}}, {{Name: "zero_crossings", Value: ecg.Int(0)}},
		}},
		{Analysis: "summary", Version: 2, Leads: [][]ecg.Measure{
			{{Name: "min", Value: ecg.Int(-4)}, {Name: "mean", Value: num(t, 1.0/3)}}, {{Name: "min", Value: ecg.Int(0)}, {Name: "mean", Value: num(t, 0)}},
		}},
	}
	one := []ecg.Result{{Analysis: "summary", Version: 2, Leads: [][]ecg.Measure{{{Name: "min", Value: ecg.Int(1)}}}}}
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)
	batch := map[ecg.Key][]ecg.Result{p1.e.Key(): two, p2.e.Key(): one, done.e.Key(): one, failed.e.Key(): one, missing: one}
	saved, err := b.ECGs().SaveFirstResults(ctx, batch, at)
	contract.NoErr(t, "SaveFirstResults", err)
	want := []ecg.Key{p1.e.Key(), p2.e.Key()}
	slices.Sort(want)
	if !slices.Equal(saved, want) {
		t.Fatalf("SaveFirstResults saved %v, want the pending ones in key order %v", saved, want)
	}
	for key, rs := range map[ecg.Key][]ecg.Result{p1.e.Key(): two, p2.e.Key(): one} {
		got, err := b.ECGs().ByKey(ctx, key)
		contract.NoErr(t, "ByKey", err)
		if got.Status() != ecg.StatusDone || got.Failure() != "" {
			t.Errorf("%s after SaveFirstResults: %s %q, want done", key, got.Status(), got.Failure())
		}
		contract.SameInstant(t, "analysed_at", got.AnalysedAt(), at)
		if g := resultsText(storedResults(t, b, key)); g != resultsText(rs) {
			t.Errorf("%s results =\n%s\nwant\n%s", key, g, resultsText(rs))
		}
	}
	// The fingerprint is each ECG's own: p2's results are current for summary@2 alone.
	outdated, err := b.ECGs().Outdated(ctx, "", []ecgport.AnalysisVersion{{Name: "summary", Version: 2}}, 10)
	contract.NoErr(t, "Outdated", err)
	if slices.Contains(outdated, p2.e.Key()) || !slices.Contains(outdated, p1.e.Key()) {
		t.Errorf("outdated for summary@2 = %v: want p1 (it has zero_crossings too) and not p2", outdated)
	}
	// What was not pending is as it was, and a missing key stores nothing.
	if g := resultsText(storedResults(t, b, done.e.Key())); g != resultsText(earlier) {
		t.Errorf("a done ECG's results after SaveFirstResults = %s, want the earlier ones", g)
	}
	got, err := b.ECGs().ByKey(ctx, failed.e.Key())
	contract.NoErr(t, "ByKey", err)
	if got.Status() != ecg.StatusFailed || len(storedResults(t, b, failed.e.Key())) != 0 {
		t.Errorf("a failed ECG after SaveFirstResults: %s with %d results", got.Status(), len(storedResults(t, b, failed.e.Key())))
	}
	if n := len(storedResults(t, b, missing)); n != 0 {
		t.Errorf("SaveFirstResults stored %d results under a missing key", n)
	}
	// Saving again finds nothing pending.
	again, err := b.ECGs().SaveFirstResults(ctx, map[ecg.Key][]ecg.Result{p1.e.Key(): one}, at.Add(time.Hour))
	contract.NoErr(t, "SaveFirstResults again", err)
	if len(again) != 0 || resultsText(storedResults(t, b, p1.e.Key())) != resultsText(two) {
		t.Errorf("a second SaveFirstResults saved %v, results now %s", again, resultsText(storedResults(t, b, p1.e.Key())))
	}

	// All or none: results storage cannot keep refuse the whole batch.
	p3, p4 := addECG(t, b, owner, "p3"), addECG(t, b, owner, "p4")
	bad := []ecg.Result{{Analysis: "", Version: 1, Leads: [][]ecg.Measure{{{Name: "m", Value: ecg.Int(1)}}}}}
	if _, err := b.ECGs().SaveFirstResults(ctx, map[ecg.Key][]ecg.Result{p3.e.Key(): one, p4.e.Key(): bad}, at); err == nil {
		t.Fatal("SaveFirstResults with an unnamed analysis succeeded")
	}
	for _, u := range []upload{p3, p4} {
		got, err := b.ECGs().ByKey(ctx, u.e.Key())
		contract.NoErr(t, "ByKey", err)
		if got.Status() != ecg.StatusPending || len(storedResults(t, b, u.e.Key())) != 0 {
			t.Errorf("%s after a refused batch: %s with %d results, want pending with none", u.e.ID(), got.Status(), len(storedResults(t, b, u.e.Key())))
		}
	}
	// And in a rolled-back unit of work nothing stays.
	err = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if _, err := b.Store.ECGs(tx).SaveFirstResults(ctx, map[ecg.Key][]ecg.Result{p3.e.Key(): one}, at); err != nil {
			return err
		}
		return errBoom
	})
	contract.WantErr(t, "Do", err, errBoom)
	got, err = b.ECGs().ByKey(ctx, p3.e.Key())
	contract.NoErr(t, "ByKey", err)
	if got.Status() != ecg.StatusPending || len(storedResults(t, b, p3.e.Key())) != 0 {
		t.Errorf("after a rolled-back SaveFirstResults: %s with %d results", got.Status(), len(storedResults(t, b, p3.e.Key())))
	}
}
