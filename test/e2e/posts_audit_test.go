package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// auditCacheBudget is a post-list cache small enough for a test to fill: a page may take a
// sixteenth of it (128 KiB) and one user's pages a quarter (512 KiB).
const auditCacheBudget = 2 << 20

// TestOneUsersPagesLeaveRoomInTheCache: a user who lists many distinct pages (every page of
// every limit from 1 to 10 over 24 posts of 5 KB) does not take the whole cache, so another
// user's page is still kept: its second list is a HIT. Before, the greedy user's pages filled
// the budget for the TTL and every other user's lists missed.
func TestOneUsersPagesLeaveRoomInTheCache(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := startServer(t, b.env(t), "APP_CACHE_POSTS_MAX_BYTES="+strconv.Itoa(auditCacheBudget))
			greedy := s.signup(uniqueEmail("greedy"))
			for i := range 24 {
				s.addPost(greedy.Access, fmt.Sprintf("%02d", i)+strings.Repeat("g", 5000))
			}
			// Every page of every limit from 1 to 10: each under the share one page may take,
			// together about 2.7 MB, more than the whole budget.
			for limit := 1; limit <= 10; limit++ {
				query := "?limit=" + strconv.Itoa(limit)
				for {
					p, _ := s.list(greedy.Access, query)
					if p.NextCursor == nil {
						break
					}
					query = "?limit=" + strconv.Itoa(limit) + "&cursor=" + *p.NextCursor
				}
			}
			if held := s.metric("postsvc_post_cache_bytes"); held > auditCacheBudget/4 {
				t.Errorf("one user's pages hold %.0f bytes of a %d budget, over a quarter", held, auditCacheBudget)
			}
			victim := s.signup(uniqueEmail("victim"))
			s.addPost(victim.Access, strings.Repeat("v", 40000))
			s.list(victim.Access, "")
			if _, r := s.list(victim.Access, ""); r.Header.Get("X-Cache") != "HIT" {
				t.Fatalf("another user's page was not kept after one user listed many: X-Cache %q, cache holds %.0f bytes",
					r.Header.Get("X-Cache"), s.metric("postsvc_post_cache_bytes"))
			}
		})
	}
}

// TestWritesThroughAnotherInstanceLeaveNoDeadPages: an author who writes through one instance
// and lists through another (which never sees those writes' Forget) leaves on the lister only
// the page of the current version, the one a list can still ask for, not a page per write
// kept for the TTL; another user's page is still kept there. Before, each round left a dead
// page behind (30 after 30 rounds); with larger posts they filled the budget, and every other
// user's lists then missed on that instance. Instances share one database only on MySQL
// (with Redis, as in production).
func TestWritesThroughAnotherInstanceLeaveNoDeadPages(t *testing.T) {
	for _, b := range backends() {
		if b.name != "mysql" {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			// One signing secret, so a token from one instance is good on the other.
			env := append(b.env(t), "APP_CACHE_POSTS_MAX_BYTES="+strconv.Itoa(auditCacheBudget),
				"APP_AUTH_JWT_SECRET="+strings.Repeat("postsaudit", 4))
			writer := startServer(t, env)
			lister := startServer(t, env)
			a := writer.signup(uniqueEmail("writer"))
			var ids []string
			for i := range 30 {
				ids = append(ids, writer.addPost(a.Access, fmt.Sprintf("%02d", i)+strings.Repeat("w", 1000)))
				p, r := lister.list(a.Access, "?limit=100")
				if len(p.Posts) != len(ids) || p.Posts[0].ID != ids[len(ids)-1] {
					t.Fatalf("round %d: the list through the other instance shows %d posts (X-Cache %s), want %d with the new one first",
						i, len(p.Posts), r.Header.Get("X-Cache"), len(ids))
				}
				if _, r := lister.list(a.Access, "?limit=100"); r.Header.Get("X-Cache") != "HIT" {
					t.Fatalf("round %d: the page just listed was not kept: X-Cache %q", i, r.Header.Get("X-Cache"))
				}
			}
			if n := lister.metric("postsvc_post_cache_items"); n != 1 {
				t.Errorf("the lister holds %.0f pages after 30 writes elsewhere, want 1 (the current version's)", n)
			}
			victim := lister.signup(uniqueEmail("victim"))
			lister.addPost(victim.Access, "hello")
			lister.list(victim.Access, "")
			if _, r := lister.list(victim.Access, ""); r.Header.Get("X-Cache") != "HIT" {
				t.Fatalf("another user's page was not kept on the lister: X-Cache %q, cache holds %.0f bytes",
					r.Header.Get("X-Cache"), lister.metric("postsvc_post_cache_bytes"))
			}
			expect(t, lister.do("GET", "/api/v1/posts/"+ids[0], a.Access, nil), http.StatusOK)
		})
	}
}
