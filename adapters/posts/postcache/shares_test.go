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
