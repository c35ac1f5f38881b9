package bench

import (
	"context"
	"net/http"
	"testing"

	"github.com/acme/postsvc/domain/identity"
)

// listPath asks for the first page with the default limit (20), as most clients do.
const listPath = "/api/v1/posts"

// seededPosts gives the list a full first page and a next cursor; seededPostBytes is a
// typical short post.
const (
	seededPosts     = 30
	seededPostBytes = 280
)

// BenchmarkTokenVerify verifies a token minted by a real signup, with the service's own
// configuration and the system clock, from all cores at once: the first half of the check
// every authenticated request makes. The token is one seen before, as nearly every request's
// is (the issuer remembers verified tokens); adapters/jwttoken's BenchmarkVerify measures both
// a first use and a later one on one goroutine with a fake clock.
func BenchmarkTokenVerify(b *testing.B) {
	s := newStack(b, sqliteDB, cheapHashing)
	token := s.signup(b).token
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.srv.Tokens.Verify(token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAuthenticate is the whole per-request authentication check: the token's
// verification plus the one database read of the session joined to its user
// (auth.Service.Authenticate). Its cost minus BenchmarkTokenVerify's is what reading the
// caller's current state on every request costs. The mysql cases need TEST_MYSQL_DSN (or
// Docker); without either they are skipped, except in CI, where they fail.
func BenchmarkAuthenticate(b *testing.B) {
	for _, backend := range []struct {
		name string
		open database
	}{
		{"sqlite", sqliteDB},
		{"mysql", mysqlDB},
	} {
		b.Run(backend.name, func(b *testing.B) {
			s := newStack(b, backend.open, cheapHashing)
			token := s.signup(b).token
			ctx := context.Background()
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.srv.Auth.Authenticate(ctx, token); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.srv.Auth.Authenticate(ctx, token); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}

// BenchmarkListCached is GET /api/v1/posts answered from the post-list cache, through the
// router and every middleware: authentication (with its database read) included.
func BenchmarkListCached(b *testing.B) {
	s := newStack(b, sqliteDB, cheapHashing)
	a := s.signup(b)
	s.addPosts(b, a, seededPosts, seededPostBytes)
	if rec := s.serve(http.MethodGet, listPath, a.token, nil); rec.Header().Get("X-Cache") != "MISS" {
		b.Fatalf("the first list was not a miss: X-Cache %q", rec.Header().Get("X-Cache"))
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := s.serve(http.MethodGet, listPath, a.token, nil)
		expectStatus(b, rec, http.StatusOK)
		if got := rec.Header().Get("X-Cache"); got != "HIT" {
			b.Fatalf("X-Cache %q, want HIT", got)
		}
	}
}

// BenchmarkListMiss is the same request when the page is not cached, so it is read from the
// database. Each iteration first drops the user's cached pages (postcache.Cache.Forget, what
// every write does after its commit; well under a microsecond here), and every response is
// checked to be a MISS.
func BenchmarkListMiss(b *testing.B) {
	s := newStack(b, sqliteDB, cheapHashing)
	a := s.signup(b)
	s.addPosts(b, a, seededPosts, seededPostBytes)
	uid := identity.UserID(a.id)
	b.ReportAllocs()
	for b.Loop() {
		s.srv.PostCache.Forget(uid)
		rec := s.serve(http.MethodGet, listPath, a.token, nil)
		expectStatus(b, rec, http.StatusOK)
		if got := rec.Header().Get("X-Cache"); got != "MISS" {
			b.Fatalf("X-Cache %q, want MISS", got)
		}
	}
}

// BenchmarkAddPost is POST /api/v1/posts with a 1 KiB and a 1 MiB text (the largest the
// contract allows): body decoding and UTF-8 checking, the version bump and insert in one
// transaction, and the 201 response that echoes the post.
func BenchmarkAddPost(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{
		{"1KiB", 1 << 10},
		{"1MiB", 1 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newStack(b, sqliteDB, cheapHashing)
			a := s.signup(b)
			body := postBody(b, bc.size)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				expectStatus(b, s.serve(http.MethodPost, "/api/v1/posts", a.token, body), http.StatusCreated)
			}
		})
	}
}

// BenchmarkSignup is POST /api/v1/auth/signup with the service's default (OWASP) argon2id
// cost, which dominates it.
func BenchmarkSignup(b *testing.B) {
	s := newStack(b, sqliteDB, owaspHashing)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		body := credentials(b, uniqueEmail("signup"))
		b.StartTimer()
		expectStatus(b, s.serve(http.MethodPost, "/api/v1/auth/signup", "", body), http.StatusCreated)
	}
}

// BenchmarkLogin is POST /api/v1/auth/login with the right password and the default
// (OWASP) argon2id cost: throttle check, lookup by email, one verification, a new session
// row and a signed token.
func BenchmarkLogin(b *testing.B) {
	s := newStack(b, sqliteDB, owaspHashing)
	a := s.signup(b)
	body := credentials(b, a.email)
	b.ReportAllocs()
	for b.Loop() {
		expectStatus(b, s.serve(http.MethodPost, "/api/v1/auth/login", "", body), http.StatusOK)
	}
}
