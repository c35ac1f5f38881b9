package postcache

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports/posts"
)

// TestANewerVersionRetiresTheOlderPages: once a page of a user's newer posts version is kept,
// the pages of older versions, which no request can ask for again, give their bytes back, and
// a page loaded under an older version than the kept ones is served but not kept. Before,
// another instance's writes (whose Forget runs elsewhere) left a dead page per write here for
// the TTL, until they filled the budget and every user's pages were refused.
func TestANewerVersionRetiresTheOlderPages(t *testing.T) {
	c := newCache(t)
	var calls atomic.Int64
	at := func(version int64, cursor string) posts.PostPageKey {
		return posts.PostPageKey{UserID: "u1", Version: version, Cursor: cursor, Limit: 20}
	}
	get := func(k posts.PostPageKey) bool {
		t.Helper()
		_, hit, err := c.GetOrLoad(context.Background(), k, loader(makePage("u1", 2, 100), &calls))
		if err != nil {
			t.Fatal(err)
		}
		return hit
	}
	other := posts.PostPageKey{UserID: "u2", Version: 1, Limit: 20}
	if _, _, err := c.GetOrLoad(context.Background(), other, loader(makePage("u2", 2, 100), &calls)); err != nil {
		t.Fatal(err)
	}
	for version := int64(1); version <= 50; version++ {
		get(at(version, ""))
		get(at(version, "c2"))
		if !get(at(version, "")) || !get(at(version, "c2")) {
			t.Fatalf("version %d: the pages just kept are not hits", version)
		}
	}
	newest := pageBytes(cacheKey(at(50, "")), makePage("u1", 2, 100)) + pageBytes(cacheKey(at(50, "c2")), makePage("u1", 2, 100))
	otherBytes := pageBytes(cacheKey(other), makePage("u2", 2, 100))
	if s := c.Stats(); s.Items != 3 || s.Bytes != newest+otherBytes {
		t.Fatalf("after 50 versions: %+v, want the newest version's 2 pages and u2's (%d bytes)", s, newest+otherBytes)
	}
	if n := c.items.ItemCount(); n != 3 {
		t.Fatalf("go-cache holds %d items, want 3", n)
	}
	// A load overtaken by a newer version is answered but not kept.
	for range 2 {
		if get(at(49, "late")) {
			t.Fatal("a page of a superseded version was kept")
		}
	}
	if s := c.Stats(); s.Items != 3 {
		t.Fatalf("a superseded page was kept: %+v", s)
	}
	if _, hit, _ := c.GetOrLoad(context.Background(), other, loader(makePage("u2", 2, 100), &calls)); !hit {
		t.Fatal("another user's page was dropped")
	}
}

// TestOneUserTakesAQuarterAtMost: one user's pages together take at most a quarter of the
// budget, the user giving up its own oldest pages to keep a new one, so one user listing many
// distinct pages cannot shut every other user out of the cache.
func TestOneUserTakesAQuarterAtMost(t *testing.T) {
	const budget = 1 << 20
	c := New(config.Cache{PostsTTL: time.Minute, PostsMaxBytes: budget})
	var calls atomic.Int64
	page := func(u identity.UserID) posts.PostPage { return makePage(u, 4, 2000) }
	key := func(u identity.UserID, limit int) posts.PostPageKey {
		return posts.PostPageKey{UserID: u, Version: 1, Cursor: fmt.Sprint("c", limit), Limit: limit}
	}
	for limit := 1; limit <= 100; limit++ {
		if _, _, err := c.GetOrLoad(context.Background(), key("greedy", limit), loader(page("greedy"), &calls)); err != nil {
			t.Fatal(err)
		}
		if _, hit, _ := c.GetOrLoad(context.Background(), key("greedy", limit), loader(page("greedy"), &calls)); !hit {
			t.Fatalf("limit %d: the page just loaded is not kept", limit)
		}
	}
	s := c.Stats()
	if s.Bytes > budget/4 || s.Bytes < budget/4-pageBytes(cacheKey(key("greedy", 100)), page("greedy")) {
		t.Fatalf("one user holds %d bytes, want just under a quarter of %d", s.Bytes, budget)
	}
	if s.Rejected != 0 {
		t.Fatalf("%d pages refused; a user over its share gives up its oldest pages instead", s.Rejected)
	}
	// Every other user still has room: three more users as greedy fill the budget, not more.
	for _, u := range []identity.UserID{"a", "b", "c"} {
		for limit := 1; limit <= 100; limit++ {
			if _, _, err := c.GetOrLoad(context.Background(), key(u, limit), loader(page(u), &calls)); err != nil {
				t.Fatal(err)
			}
		}
		if _, hit, _ := c.GetOrLoad(context.Background(), key(u, 100), loader(page(u), &calls)); !hit {
			t.Fatalf("user %s: its newest page is not kept", u)
		}
	}
	if s := c.Stats(); s.Bytes > budget {
		t.Fatalf("%d bytes held over a budget of %d", s.Bytes, budget)
	}
	c.Forget("greedy")
	c.Forget("a")
	c.Forget("b")
	c.Forget("c")
	if s := c.Stats(); s.Bytes != 0 || s.Items != 0 || len(c.ledger.byUser) != 0 {
		t.Fatalf("after Forget: %+v, %d users listed", s, len(c.ledger.byUser))
	}
}

// TestAUserOverItsShareGivesUpItsOldestPagesInOrder: a user crawling many distinct pages at its
// share keeps its newest ones, and the list that orders its pages stays within a small
// multiple of the pages it holds, however many it has stored and given up.
func TestAUserOverItsShareGivesUpItsOldestPagesInOrder(t *testing.T) {
	const budget = 1 << 20
	c := New(config.Cache{PostsTTL: time.Minute, PostsMaxBytes: budget})
	var calls atomic.Int64
	page := makePage("crawler", 4, 2000)
	key := func(i int) posts.PostPageKey {
		return posts.PostPageKey{UserID: "crawler", Version: 1, Cursor: fmt.Sprint("c", i), Limit: 4}
	}
	const pages = 5000
	for i := range pages {
		if _, _, err := c.GetOrLoad(context.Background(), key(i), loader(page, &calls)); err != nil {
			t.Fatal(err)
		}
		// Some pages go early, as Forget and expiry remove them, so the list has holes.
		if i%7 == 0 {
			c.items.Delete(cacheKey(key(i)))
		}
	}
	up := c.ledger.byUser["crawler"]
	if up == nil || len(up.pages) == 0 {
		t.Fatal("the crawler keeps no page")
	}
	if listed := len(up.order) - up.head; listed > 2*len(up.pages)+16 {
		t.Fatalf("%d entries listed for %d pages held", listed, len(up.pages))
	}
	// The pages kept are the newest ones (less those deleted early), with no gap.
	kept := 0
	for i := pages - 1; i >= 0; i-- {
		_, ok := up.pages[cacheKey(key(i))]
		switch {
		case ok:
			kept++
		case i%7 == 0:
		default:
			if kept != len(up.pages) {
				t.Fatalf("page %d was given up while older ones are kept", i)
			}
		}
		if kept == len(up.pages) {
			break
		}
	}
	if kept != len(up.pages) {
		t.Fatalf("found %d of the %d pages kept among the newest", kept, len(up.pages))
	}
	if s := c.Stats(); s.Bytes > budget/4 || s.Rejected != 0 {
		t.Fatalf("stats %+v: want at most a quarter of %d and nothing refused", s, budget)
	}
}

// BenchmarkMissAtTheUsersShare is a user crawling distinct pages once at its share of the
// budget: every miss keeps its page by giving up the user's oldest.
func BenchmarkMissAtTheUsersShare(b *testing.B) {
	c := New(config.Cache{PostsTTL: time.Minute, PostsMaxBytes: 64 << 20})
	page := makePage("crawler", 20, 280)
	load := func(context.Context) (posts.PostPage, error) { return page, nil }
	key := func(i int) posts.PostPageKey {
		return posts.PostPageKey{UserID: "crawler", Version: 1, Cursor: fmt.Sprint("c", i), Limit: 20}
	}
	// Fill the user's share first.
	i := 0
	for c.Stats().Bytes < (64<<20)/4-64<<10 {
		if _, _, err := c.GetOrLoad(context.Background(), key(i), load); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, hit, err := c.GetOrLoad(context.Background(), key(i), load); hit || err != nil {
			b.Fatal(hit, err)
		}
		i++
	}
}
