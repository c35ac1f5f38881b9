package postcache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports/posts"
)

var created = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func makePage(owner identity.UserID, n, textLen int) posts.PostPage {
	items := make([]*post.Post, n)
	for i := range items {
		items[i] = post.Rehydrate(post.ID(fmt.Sprintf("post-%03d", i)), owner, strings.Repeat("x", textLen), created)
	}
	return posts.PostPage{Posts: items, NextCursor: "Y3Vyc29y"}
}

func key(owner identity.UserID) posts.PostPageKey {
	return posts.PostPageKey{UserID: owner, Version: 1, Limit: 20}
}

// loader returns a load function that counts its calls and returns page.
func loader(page posts.PostPage, calls *atomic.Int64) func(context.Context) (posts.PostPage, error) {
	return func(context.Context) (posts.PostPage, error) {
		calls.Add(1)
		return page, nil
	}
}

func newCache(t *testing.T) *Cache {
	t.Helper()
	return New(config.Cache{PostsTTL: time.Minute, PostsMaxBytes: 64 << 20})
}

func TestHitAndMiss(t *testing.T) {
	c := newCache(t)
	var calls atomic.Int64
	page := makePage("u1", 3, 10)
	ctx := context.Background()

	got, hit, err := c.GetOrLoad(ctx, key("u1"), loader(page, &calls))
	if err != nil || hit {
		t.Fatalf("first call: hit=%v err=%v, want a miss", hit, err)
	}
	if len(got.Posts) != 3 || got.NextCursor != page.NextCursor {
		t.Fatalf("first call returned %+v", got)
	}
	got, hit, err = c.GetOrLoad(ctx, key("u1"), loader(page, &calls))
	if err != nil || !hit {
		t.Fatalf("second call: hit=%v err=%v, want a hit", hit, err)
	}
	if len(got.Posts) != 3 || got.Posts[0] != page.Posts[0] {
		t.Fatalf("hit returned %+v", got)
	}
	if calls.Load() != 1 {
		t.Fatalf("load ran %d times, want 1", calls.Load())
	}
	s := c.Stats()
	if s.Hits != 1 || s.Misses != 1 || s.Items != 1 || s.Bytes != pageBytes(cacheKey(key("u1")), page) {
		t.Fatalf("stats = %+v", s)
	}
}

// TestSingleflight holds the load open until every caller has been started, so without
// coalescing each caller would run its own load.
func TestSingleflight(t *testing.T) {
	c := newCache(t)
	const callers = 50
	var calls atomic.Int64
	release := make(chan struct{})
	load := func(context.Context) (posts.PostPage, error) {
		calls.Add(1)
		<-release
		return makePage("u1", 2, 5), nil
	}
	var started, done sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		started.Add(1)
		done.Go(func() {
			started.Done()
			page, _, err := c.GetOrLoad(context.Background(), key("u1"), load)
			if err == nil && len(page.Posts) != 2 {
				err = fmt.Errorf("got %d posts", len(page.Posts))
			}
			errs <- err
		})
	}
	started.Wait()
	// Give the goroutines time to reach the flight; late ones find the stored page instead,
	// which keeps the count at one either way.
	time.Sleep(50 * time.Millisecond)
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("load ran %d times for %d concurrent callers, want 1", got, callers)
	}
	if s := c.Stats(); s.Hits+s.Misses != callers {
		t.Fatalf("hits %d + misses %d != %d callers", s.Hits, s.Misses, callers)
	}
}

// TestLeaderCancelDoesNotFailFollowers cancels the caller whose request started the load. The
// load goes on, unaware, for the caller still waiting; the leader, on whose goroutine it runs,
// gets the page with the others.
func TestLeaderCancelDoesNotFailFollowers(t *testing.T) {
	c := newCache(t)
	var calls atomic.Int64
	loadStarted := make(chan struct{})
	release := make(chan struct{})
	loadCtxErr := make(chan error, 1)
	load := func(ctx context.Context) (posts.PostPage, error) {
		calls.Add(1)
		close(loadStarted)
		<-release
		loadCtxErr <- ctx.Err()
		return makePage("u1", 1, 5), nil
	}
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, _, err := c.GetOrLoad(leaderCtx, key("u1"), load)
		leader <- err
	}()
	<-loadStarted
	follower := make(chan error, 1)
	go func() {
		page, _, err := c.GetOrLoad(context.Background(), key("u1"), load)
		if err == nil && len(page.Posts) != 1 {
			err = fmt.Errorf("follower got %d posts", len(page.Posts))
		}
		follower <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancelLeader()
	close(release)
	if err := <-follower; err != nil {
		t.Fatalf("follower failed because the leader went away: %v", err)
	}
	if err := <-leader; err != nil {
		t.Fatalf("the leader's load failed: %v", err)
	}
	if err := <-loadCtxErr; err != nil {
		t.Fatalf("the shared load saw its context end: %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("load ran %d times, want 1", calls.Load())
	}
	if _, hit, _ := c.GetOrLoad(context.Background(), key("u1"), load); !hit {
		t.Fatal("the page loaded for the departed leader was not cached")
	}
}

// TestFollowerStopsWaitingWhenItsContextEnds: a caller that joined a load leaves as soon as
// its own context ends, with that context's error, while the load goes on.
func TestFollowerStopsWaitingWhenItsContextEnds(t *testing.T) {
	c := newCache(t)
	loadStarted := make(chan struct{})
	release := make(chan struct{})
	load := func(context.Context) (posts.PostPage, error) {
		close(loadStarted)
		<-release
		return makePage("u1", 1, 5), nil
	}
	leader := make(chan error, 1)
	go func() {
		_, _, err := c.GetOrLoad(context.Background(), key("u1"), load)
		leader <- err
	}()
	<-loadStarted
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.GetOrLoad(ctx, key("u1"), load); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("follower whose deadline passed got %v, want context.DeadlineExceeded", err)
	}
	close(release)
	if err := <-leader; err != nil {
		t.Fatalf("leader: %v", err)
	}
}

// TestMissLoadsOnTheCallersGoroutine: a miss starts no goroutine of its own (the list-miss
// profile spent about a twentieth of the server's CPU starting and growing them).
func TestMissLoadsOnTheCallersGoroutine(t *testing.T) {
	c := newCache(t)
	before := runtime.NumGoroutine()
	var during int
	_, hit, err := c.GetOrLoad(context.Background(), key("u1"), func(context.Context) (posts.PostPage, error) {
		during = runtime.NumGoroutine()
		return makePage("u1", 1, 5), nil
	})
	if err != nil || hit {
		t.Fatalf("GetOrLoad = hit %v, %v", hit, err)
	}
	if during != before {
		t.Fatalf("%d goroutines during the load, %d before: the load ran on a goroutine of its own", during, before)
	}
}

// TestFollowerRetriesAfterLeaderDeadline lets the shared load fail with the leader's deadline
// while the follower still has time: the follower must get the page from a second load.
func TestFollowerRetriesAfterLeaderDeadline(t *testing.T) {
	c := newCache(t)
	var calls atomic.Int64
	firstStarted := make(chan struct{})
	load := func(ctx context.Context) (posts.PostPage, error) {
		if calls.Add(1) == 1 {
			close(firstStarted)
			<-ctx.Done()
			return posts.PostPage{}, fmt.Errorf("query: %w", ctx.Err())
		}
		return makePage("u1", 1, 5), nil
	}
	leaderCtx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	leader := make(chan error, 1)
	go func() {
		_, _, err := c.GetOrLoad(leaderCtx, key("u1"), load)
		leader <- err
	}()
	<-firstStarted
	page, _, err := c.GetOrLoad(context.Background(), key("u1"), load)
	if err != nil || len(page.Posts) != 1 {
		t.Fatalf("follower: %d posts, %v; want the page", len(page.Posts), err)
	}
	// The load's deadline and the leader's own fire at the same instant on separate timers.
	// When the load's fires first the leader still looks alive and joins the retry, so it may
	// get the page; either answer is right, any other error is not.
	if err := <-leader; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("leader got %v, want its deadline or the page", err)
	}
	if calls.Load() != 2 {
		t.Fatalf("load ran %d times, want 2 (the failed shared one and the retry)", calls.Load())
	}
}

func TestLoadKeepsCallerDeadline(t *testing.T) {
	c := newCache(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want, _ := ctx.Deadline()
	var got time.Time
	var had bool
	_, _, err := c.GetOrLoad(ctx, key("u1"), func(ctx context.Context) (posts.PostPage, error) {
		got, had = ctx.Deadline()
		return makePage("u1", 1, 1), nil
	})
	if err != nil || !had || !got.Equal(want) {
		t.Fatalf("load deadline = %v (set %v), want %v; err %v", got, had, want, err)
	}
	_, _, err = c.GetOrLoad(context.Background(), key("u2"), func(ctx context.Context) (posts.PostPage, error) {
		got, had = ctx.Deadline()
		return makePage("u2", 1, 1), nil
	})
	if err != nil || !had || time.Until(got) > time.Minute {
		t.Fatalf("load without a caller deadline: deadline %v (set %v), want one within a minute", got, had)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c := newCache(t)
	boom := errors.New("database down")
	var calls atomic.Int64
	failing := func(context.Context) (posts.PostPage, error) {
		calls.Add(1)
		return posts.PostPage{}, boom
	}
	for range 3 {
		if _, hit, err := c.GetOrLoad(context.Background(), key("u1"), failing); !errors.Is(err, boom) || hit {
			t.Fatalf("GetOrLoad = hit %v, %v; want the load error", hit, err)
		}
	}
	if calls.Load() != 3 {
		t.Fatalf("load ran %d times, want 3: an error must not be cached", calls.Load())
	}
	if s := c.Stats(); s.Items != 0 || s.Bytes != 0 {
		t.Fatalf("stats after errors = %+v", s)
	}
	_, hit, err := c.GetOrLoad(context.Background(), key("u1"), loader(makePage("u1", 1, 1), &calls))
	if err != nil || hit {
		t.Fatalf("after recovery: hit %v, %v", hit, err)
	}
}

// TestPanicInLoadReachesTheCaller: a panicking load goes on up the caller's goroutine (the
// recovery middleware answers it) and caches nothing.
func TestPanicInLoadReachesTheCaller(t *testing.T) {
	c := newCache(t)
	got := func() (v any) {
		defer func() { v = recover() }()
		_, _, _ = c.GetOrLoad(context.Background(), key("u1"), func(context.Context) (posts.PostPage, error) {
			panic("bug in loader")
		})
		return nil
	}()
	if got != "bug in loader" {
		t.Fatalf("recovered %v, want the loader's panic", got)
	}
	if s := c.Stats(); s.Items != 0 {
		t.Fatalf("a panicking load was cached: %+v", s)
	}
	if _, _, err := c.GetOrLoad(context.Background(), key("u1"), loader(makePage("u1", 1, 1), new(atomic.Int64))); err != nil {
		t.Fatalf("after the panic, a new load failed: %v", err)
	}
}

func TestPageOverBudgetIsReturnedButNotCached(t *testing.T) {
	small := makePage("u1", 1, 10)
	smallBytes := pageBytes(cacheKey(key("u1")), small)
	c := New(config.Cache{PostsTTL: time.Minute, PostsMaxBytes: 2 * smallBytes})
	// This test is about the total budget; the shares one page and one user may take have
	// their own tests.
	c.ledger.maxEntry, c.ledger.maxUser = c.ledger.maxBytes, c.ledger.maxBytes
	var calls atomic.Int64

	big := makePage("u1", 5, 1000)
	bigKey := key("u1")
	bigKey.Cursor = "big"
	for range 2 {
		got, hit, err := c.GetOrLoad(context.Background(), bigKey, loader(big, &calls))
		if err != nil || hit || len(got.Posts) != 5 {
			t.Fatalf("over-budget page: %d posts, hit %v, %v", len(got.Posts), hit, err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("over-budget page loaded %d times, want 2 (never cached)", calls.Load())
	}
	if s := c.Stats(); s.Items != 0 || s.Bytes != 0 || s.Rejected != 2 {
		t.Fatalf("stats = %+v, want nothing held and 2 rejected", s)
	}

	// Two small pages fill the budget exactly; a third user's page no longer fits until the
	// budget is given back.
	for _, u := range []identity.UserID{"u1", "u2", "u3"} {
		if _, _, err := c.GetOrLoad(context.Background(), key(u), loader(makePage(u, 1, 10), &calls)); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Items != 2 || s.Bytes != 2*smallBytes {
		t.Fatalf("stats = %+v, want 2 items of %d bytes", s, smallBytes)
	}
	c.Forget("u1")
	if _, _, err := c.GetOrLoad(context.Background(), key("u3"), loader(makePage("u3", 1, 10), &calls)); err != nil {
		t.Fatal(err)
	}
	if _, hit, _ := c.GetOrLoad(context.Background(), key("u3"), loader(makePage("u3", 1, 10), &calls)); !hit {
		t.Fatal("after Forget freed room, u3's page was not cached")
	}
}

// TestOnePageTakesASmallShareAtMost fills no more than a sixteenth of the budget with one page:
// a page just over that share is served but not kept, one just under it is kept.
func TestOnePageTakesASmallShareAtMost(t *testing.T) {
	const budget = 1 << 20
	c := New(config.Cache{PostsTTL: time.Minute, PostsMaxBytes: budget})
	var calls atomic.Int64
	k := key("u1")
	k.Cursor = "over"
	// The largest text whose page costs at most a sixteenth (the cost counts the text and
	// the room its rendering may keep).
	n := sort.Search(budget, func(n int) bool { return pageBytes(cacheKey(k), makePage("u1", 1, n+1)) > budget/16 })
	over := makePage("u1", 1, n+1)
	under := makePage("u1", 1, n)
	for range 2 {
		if _, hit, err := c.GetOrLoad(context.Background(), k, loader(over, &calls)); hit || err != nil {
			t.Fatalf("page over the share: hit %v, %v", hit, err)
		}
	}
	if s := c.Stats(); s.Items != 0 || s.Rejected != 2 || calls.Load() != 2 {
		t.Fatalf("a page over a sixteenth of the budget was kept: %+v, %d loads", s, calls.Load())
	}
	k.Cursor = "belo" // as long as "over", so the page's overhead is the same
	for range 2 {
		if _, _, err := c.GetOrLoad(context.Background(), k, loader(under, &calls)); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Items != 1 || s.Bytes != pageBytes(cacheKey(k), under) || s.Bytes > budget/16 || calls.Load() != 3 {
		t.Fatalf("a page of at most a sixteenth was not kept: %+v, %d loads", s, calls.Load())
	}
}

func TestZeroBudgetCachesNothing(t *testing.T) {
	c := New(config.Cache{PostsTTL: time.Minute})
	var calls atomic.Int64
	for range 2 {
		if _, hit, err := c.GetOrLoad(context.Background(), key("u1"), loader(makePage("u1", 1, 1), &calls)); hit || err != nil {
			t.Fatalf("hit %v, %v", hit, err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("load ran %d times, want 2", calls.Load())
	}
}

func TestBytesReturnAfterForget(t *testing.T) {
	c := newCache(t)
	var calls atomic.Int64
	for i := range 5 {
		k := key("u1")
		k.Cursor = fmt.Sprint("c", i)
		if _, _, err := c.GetOrLoad(context.Background(), k, loader(makePage("u1", 3, 100), &calls)); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Items != 5 || s.Bytes <= 0 {
		t.Fatalf("stats = %+v", s)
	}
	c.Forget("u1")
	if s := c.Stats(); s.Items != 0 || s.Bytes != 0 || s.Evictions != 5 {
		t.Fatalf("after Forget stats = %+v, want 0 items, 0 bytes, 5 evictions", s)
	}
	if n := c.items.ItemCount(); n != 0 {
		t.Fatalf("go-cache still holds %d items", n)
	}
	if len(c.ledger.byUser) != 0 {
		t.Fatalf("user index still lists %v", c.ledger.byUser)
	}
}

// TestBytesReturnAfterExpiry also covers a key that is loaded again after its page expired
// but before clean-up: go-cache replaces such an entry without an eviction callback, and the
// byte count must not keep the old page.
func TestBytesReturnAfterExpiry(t *testing.T) {
	const ttl = 20 * time.Millisecond
	c := New(config.Cache{PostsTTL: ttl, PostsMaxBytes: 1 << 20})
	var calls atomic.Int64
	page := makePage("u1", 2, 50)
	size := pageBytes(cacheKey(key("u1")), page)

	if _, _, err := c.GetOrLoad(context.Background(), key("u1"), loader(page, &calls)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * ttl)
	if _, hit, err := c.GetOrLoad(context.Background(), key("u1"), loader(page, &calls)); hit || err != nil {
		t.Fatalf("expired page: hit %v, %v; want a miss", hit, err)
	}
	if s := c.Stats(); s.Bytes != size || s.Items != 1 || s.Evictions != 1 {
		t.Fatalf("after reload over an expired entry: %+v, want %d bytes in 1 item and 1 eviction", s, size)
	}
	time.Sleep(2 * ttl)
	c.items.DeleteExpired()
	if s := c.Stats(); s.Bytes != 0 || s.Items != 0 || s.Evictions != 2 {
		t.Fatalf("after clean-up: %+v, want nothing held and 2 evictions", s)
	}
	if len(c.ledger.byUser) != 0 {
		t.Fatalf("user index still lists %v", c.ledger.byUser)
	}
}

func TestReturnedSliceIsACopy(t *testing.T) {
	c := newCache(t)
	original := makePage("u1", 3, 5)
	loaded := posts.PostPage{Posts: append([]*post.Post(nil), original.Posts...), NextCursor: original.NextCursor}
	var calls atomic.Int64
	first, _, err := c.GetOrLoad(context.Background(), key("u1"), loader(loaded, &calls))
	if err != nil {
		t.Fatal(err)
	}
	intruder := post.Rehydrate("evil", "u1", "changed", created)
	first.Posts[0] = intruder
	first.Posts = append(first.Posts, intruder)
	loaded.Posts[1] = intruder // the loader's own slice is not the cached one either

	second, hit, err := c.GetOrLoad(context.Background(), key("u1"), loader(loaded, &calls))
	if err != nil || !hit {
		t.Fatalf("hit %v, %v", hit, err)
	}
	if len(second.Posts) != 3 {
		t.Fatalf("cached page has %d posts, want 3", len(second.Posts))
	}
	for i, p := range second.Posts {
		if p != original.Posts[i] {
			t.Fatalf("post %d changed to %q through a returned slice", i, p.ID())
		}
	}
	second.Posts[2] = intruder
	third, _, _ := c.GetOrLoad(context.Background(), key("u1"), loader(loaded, &calls))
	if third.Posts[2] != original.Posts[2] {
		t.Fatal("a hit handed out the cached slice itself")
	}
}

func TestKeysDistinguishEveryField(t *testing.T) {
	c := newCache(t)
	base := posts.PostPageKey{UserID: "u1", Version: 1, Cursor: "abc", Limit: 20}
	// A newer version retires the user's older pages (TestANewerVersionRetiresTheOlderPages),
	// so the version is told apart last, below.
	variants := []posts.PostPageKey{
		base,
		{UserID: "u1", Version: 1, Cursor: "abd", Limit: 20},
		{UserID: "u1", Version: 1, Cursor: "", Limit: 20},
		{UserID: "u1", Version: 1, Cursor: "abc", Limit: 10},
		{UserID: "u2", Version: 1, Cursor: "abc", Limit: 20},
	}
	var calls atomic.Int64
	for i, k := range variants {
		page := makePage(k.UserID, i+1, 1)
		got, hit, err := c.GetOrLoad(context.Background(), k, loader(page, &calls))
		if err != nil || hit || len(got.Posts) != i+1 {
			t.Fatalf("key %+v: %d posts, hit %v, %v; want its own miss", k, len(got.Posts), hit, err)
		}
	}
	for i, k := range variants {
		got, hit, _ := c.GetOrLoad(context.Background(), k, loader(posts.PostPage{}, &calls))
		if !hit || len(got.Posts) != i+1 {
			t.Fatalf("key %+v: %d posts, hit %v; want its own page", k, len(got.Posts), hit)
		}
	}
	newer := base
	newer.Version = 2
	got, hit, err := c.GetOrLoad(context.Background(), newer, loader(makePage("u1", 9, 1), &calls))
	if err != nil || hit || len(got.Posts) != 9 {
		t.Fatalf("key %+v: %d posts, hit %v, %v; want its own miss", newer, len(got.Posts), hit, err)
	}
}

func TestCacheKeyIsUnambiguous(t *testing.T) {
	// Pairs a naive "user|version|limit|cursor" join would confuse.
	keys := []posts.PostPageKey{
		{UserID: "a|1", Version: 2, Limit: 3, Cursor: "x"},
		{UserID: "a", Version: 1, Limit: 2, Cursor: "3|x"},
		{UserID: "a|1|2", Version: 3, Limit: 0, Cursor: "x"},
		{UserID: "1:a", Version: 1, Limit: 1, Cursor: ""},
		{UserID: "", Version: 1, Limit: 1, Cursor: "1:a"},
		{UserID: "u", Version: -1, Limit: 1, Cursor: ""},
		{UserID: "u", Version: 1, Limit: -1, Cursor: ""},
	}
	seen := map[string]posts.PostPageKey{}
	for _, k := range keys {
		s := cacheKey(k)
		if other, dup := seen[s]; dup {
			t.Fatalf("keys %+v and %+v both encode as %q", k, other, s)
		}
		seen[s] = k
	}
}

func TestForgetOnlyAffectsThatUser(t *testing.T) {
	c := newCache(t)
	var calls atomic.Int64
	for _, u := range []identity.UserID{"u1", "u2"} {
		for _, cur := range []string{"", "next"} {
			k := key(u)
			k.Cursor = cur
			if _, _, err := c.GetOrLoad(context.Background(), k, loader(makePage(u, 1, 1), &calls)); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.Forget("u1")
	c.Forget("nobody")
	for _, cur := range []string{"", "next"} {
		k1, k2 := key("u1"), key("u2")
		k1.Cursor, k2.Cursor = cur, cur
		if _, hit, _ := c.GetOrLoad(context.Background(), k2, loader(makePage("u2", 1, 1), &calls)); !hit {
			t.Fatalf("Forget(u1) dropped u2's page %q", cur)
		}
		if _, hit, _ := c.GetOrLoad(context.Background(), k1, loader(makePage("u1", 1, 1), &calls)); hit {
			t.Fatalf("Forget(u1) kept u1's page %q", cur)
		}
	}
}

// TestConcurrentUseKeepsAccountingExact mixes loads, hits, Forget and expiry clean-up from
// many goroutines (run it with -race). Once everything is forgotten and cleaned, the byte and
// item counts must be back at zero: any drift would show here.
func TestConcurrentUseKeepsAccountingExact(t *testing.T) {
	const ttl = 5 * time.Millisecond
	c := New(config.Cache{PostsTTL: ttl, PostsMaxBytes: 64 << 10})
	// Pages of up to 2 KiB, of any user, must be able to fill it.
	c.ledger.maxEntry, c.ledger.maxUser = c.ledger.maxBytes, c.ledger.maxBytes
	users := []identity.UserID{"u1", "u2", "u3", "u4"}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				u := users[r.IntN(len(users))]
				switch r.IntN(20) {
				case 0:
					c.Forget(u)
				case 1:
					c.items.DeleteExpired()
				default:
					k := posts.PostPageKey{UserID: u, Version: int64(r.IntN(3)), Cursor: fmt.Sprint(r.IntN(4)), Limit: 20}
					page := makePage(u, 1+r.IntN(4), r.IntN(500))
					if _, _, err := c.GetOrLoad(context.Background(), k, func(context.Context) (posts.PostPage, error) { return page, nil }); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	s := c.Stats()
	if s.Bytes > 64<<10 || s.Bytes < 0 || s.Items < 0 {
		t.Fatalf("counters out of range mid-flight: %+v", s)
	}
	for _, u := range users {
		c.Forget(u)
	}
	time.Sleep(2 * ttl)
	c.items.DeleteExpired()
	if s := c.Stats(); s.Bytes != 0 || s.Items != 0 {
		t.Fatalf("after forgetting everything: %+v, want 0 bytes and 0 items", s)
	}
	if n := c.items.ItemCount(); n != 0 {
		t.Fatalf("go-cache still holds %d items", n)
	}
	if len(c.ledger.byUser) != 0 {
		t.Fatalf("user index still lists %d users", len(c.ledger.byUser))
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := New(config.Cache{PostsTTL: time.Minute, PostsMaxBytes: 64 << 20})
	k := posts.PostPageKey{UserID: "0190b6d6-8f3c-7a41-9c1e-2f4b5a6c7d8e", Version: 7, Cursor: "MDE5MGI2ZDYtOGYzYy03YTQx", Limit: 20}
	page := makePage(k.UserID, 20, 280)
	load := func(context.Context) (posts.PostPage, error) { return page, nil }
	if _, _, err := c.GetOrLoad(context.Background(), k, load); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, hit, err := c.GetOrLoad(context.Background(), k, load); !hit || err != nil {
				// FailNow may only be called from the benchmark's own goroutine.
				b.Error(hit, err)
				return
			}
		}
	})
}

// BenchmarkGetMiss measures a miss: every request asks for a page no earlier one did, as the
// load runner's list-miss scenario does. The load takes about as much stack as a database
// read through database/sql and the driver (a few KiB), so that where a load's goroutine
// starts from a small stack, growing it is counted too.
func BenchmarkGetMiss(b *testing.B) {
	c := New(config.Cache{PostsTTL: time.Minute, PostsMaxBytes: 64 << 20})
	page := makePage("0190b6d6-8f3c-7a41-9c1e-2f4b5a6c7d8e", 20, 280)
	load := func(context.Context) (posts.PostPage, error) {
		useStack(16)
		return page, nil
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := posts.PostPageKey{UserID: page.Posts[0].AuthorID(), Version: 7, Cursor: strconv.FormatInt(seq.Add(1), 36), Limit: 20}
			if _, hit, err := c.GetOrLoad(context.Background(), k, load); hit || err != nil {
				b.Error(hit, err)
				return
			}
		}
	})
}

// useStack recurses depth times with a 512-byte frame each.
//
//go:noinline
func useStack(depth int) byte {
	var frame [512]byte
	frame[depth%len(frame)] = byte(depth)
	if depth == 0 {
		return frame[0]
	}
	return useStack(depth-1) + frame[depth%len(frame)]
}
