package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const mib = 1 << 20

func TestPostTextBoundaries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("big"))
		cases := []struct {
			name   string
			text   string
			status int
			code   string
		}{
			{"1 MiB of 1-byte characters", strings.Repeat("a", mib), http.StatusCreated, ""},
			{"1 MiB of 4-byte characters", strings.Repeat("😀", mib/4), http.StatusCreated, ""},
			{"1 MiB of characters JSON escapes", strings.Repeat("\x01", mib), http.StatusCreated, ""},
			{"1 MiB + 1 byte", strings.Repeat("a", mib+1), http.StatusRequestEntityTooLarge, "payload_too_large"},
			{"1 MiB of 4-byte characters + 1 byte", strings.Repeat("😀", mib/4) + "a", http.StatusRequestEntityTooLarge, "payload_too_large"},
			{"empty", "", http.StatusUnprocessableEntity, "validation_failed"},
		}
		for _, c := range cases {
			r := s.do("POST", "/api/v1/posts", a.Access, map[string]any{"text": c.text})
			if c.code != "" {
				expectProblem(t, r, c.status, c.code)
				continue
			}
			expect(t, r, c.status)
			m := r.JSON(t)
			id, _ := m["id"].(string)
			if loc := r.Header.Get("Location"); loc != "/api/v1/posts/"+id {
				t.Errorf("%s: Location %q for id %q", c.name, loc, id)
			}
			got := s.do("GET", "/api/v1/posts/"+id, a.Access, nil)
			expect(t, got, http.StatusOK)
			var p struct{ Text string }
			if err := json.Unmarshal(got.Body, &p); err != nil || p.Text != c.text {
				t.Errorf("%s: text not returned byte for byte (len %d vs %d)", c.name, len(p.Text), len(c.text))
			}
		}
	})
}

// countingReader yields n bytes of a JSON post body and counts how many were read.
type countingReader struct {
	remaining int64
	read      atomic.Int64
	prefix    []byte
}

func (c *countingReader) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		c.read.Add(int64(n))
		return n, nil
	}
	if c.remaining <= 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > c.remaining {
		n = c.remaining
	}
	for i := range p[:n] {
		p[i] = 'a'
	}
	c.remaining -= n
	c.read.Add(n)
	return int(n), nil
}

func TestHugeBodyIsRefusedBeforeItIsRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("huge"))
		const size = 64 * mib
		body := &countingReader{remaining: size, prefix: []byte(`{"text":"`)}
		req, _ := http.NewRequest("POST", s.base+"/api/v1/posts", body)
		req.ContentLength = size + int64(len(`{"text":"`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+a.Access)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			// The server may close the connection while the client is still writing; what
			// matters is that it answered early, which the byte count below shows.
			t.Logf("client saw %v", err)
		} else {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413", resp.StatusCode)
			}
		}
		if sent := body.read.Load(); sent > 16*mib {
			t.Fatalf("the client had to send %d bytes of a 64 MiB body before the 413", sent)
		}
		// Chunked (no Content-Length): the limit applies while reading.
		chunked := &countingReader{remaining: size, prefix: []byte(`{"text":"`)}
		req, _ = http.NewRequest("POST", s.base+"/api/v1/posts", io.MultiReader(chunked))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+a.Access)
		resp, err = http.DefaultClient.Do(req)
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("chunked: status %d, want 413", resp.StatusCode)
			}
		}
		if sent := chunked.read.Load(); sent > 16*mib {
			t.Fatalf("chunked: %d bytes read before the 413", sent)
		}
	})
}

func TestOtherUsersPostsAreNotFound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		alice := s.signup(uniqueEmail("alice"))
		bob := s.signup(uniqueEmail("bob"))
		id := s.addPost(alice.Access, "alice only")
		missing := s.do("GET", "/api/v1/posts/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", bob.Access, nil)
		other := s.do("GET", "/api/v1/posts/"+id, bob.Access, nil)
		mp := expectProblem(t, missing, http.StatusNotFound, "post_not_found")
		op := expectProblem(t, other, http.StatusNotFound, "post_not_found")
		if mp["detail"] != op["detail"] || mp["title"] != op["title"] {
			t.Errorf("another user's post must look exactly like a missing one: %v vs %v", op, mp)
		}
		expectProblem(t, s.do("DELETE", "/api/v1/posts/"+id, bob.Access, nil), http.StatusNotFound, "post_not_found")
		expect(t, s.do("GET", "/api/v1/posts/"+id, alice.Access, nil), http.StatusOK)
		page := s.do("GET", "/api/v1/posts", bob.Access, nil)
		expect(t, page, http.StatusOK)
		if strings.Contains(string(page.Body), id) {
			t.Fatal("bob's list shows alice's post")
		}
		expect(t, s.do("DELETE", "/api/v1/posts/"+id, alice.Access, nil), http.StatusNoContent)
		expectProblem(t, s.do("GET", "/api/v1/posts/"+id, alice.Access, nil), http.StatusNotFound, "post_not_found")
	})
}

type page struct {
	Posts []struct {
		ID        string `json:"id"`
		Text      string `json:"text"`
		CreatedAt string `json:"created_at"`
	} `json:"posts"`
	NextCursor *string `json:"next_cursor"`
}

func (s *server) list(token, query string) (page, response) {
	s.t.Helper()
	r := s.do("GET", "/api/v1/posts"+query, token, nil)
	expect(s.t, r, http.StatusOK)
	// Pages are sent whole with their length, never chunked (a client can size its buffer).
	if got, want := r.Header.Get("Content-Length"), strconv.Itoa(len(r.Body)); got != want {
		s.t.Fatalf("list Content-Length %q, want %s", got, want)
	}
	var p page
	if err := json.Unmarshal(r.Body, &p); err != nil {
		s.t.Fatal(err)
	}
	return p, r
}

func TestReadYourWritesThroughTheCache(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("cache"))
		p, r := s.list(a.Access, "")
		if r.Header.Get("X-Cache") != "MISS" || len(p.Posts) != 0 || p.NextCursor != nil {
			t.Fatalf("first list: X-Cache=%q posts=%d next=%v", r.Header.Get("X-Cache"), len(p.Posts), p.NextCursor)
		}
		if !strings.Contains(string(r.Body), `"next_cursor":null`) {
			t.Fatalf("next_cursor must be null on the last page: %s", r.Body)
		}
		if _, r = s.list(a.Access, ""); r.Header.Get("X-Cache") != "HIT" {
			t.Fatalf("second list: X-Cache=%q, want HIT", r.Header.Get("X-Cache"))
		}
		// Larger than net/http's 2 KiB chunking threshold, so the page must carry its length.
		id := s.addPost(a.Access, strings.Repeat("fresh ", 700))
		p, r = s.list(a.Access, "")
		if r.Header.Get("X-Cache") != "MISS" || len(p.Posts) != 1 || p.Posts[0].ID != id {
			t.Fatalf("after add: X-Cache=%q posts=%d", r.Header.Get("X-Cache"), len(p.Posts))
		}
		if _, r = s.list(a.Access, ""); r.Header.Get("X-Cache") != "HIT" {
			t.Fatal("repeat after add must hit")
		}
		expect(t, s.do("DELETE", "/api/v1/posts/"+id, a.Access, nil), http.StatusNoContent)
		if p, _ = s.list(a.Access, ""); len(p.Posts) != 0 {
			t.Fatal("deleted post still listed: the cache served a page older than the author's write")
		}
	})
}

func TestCursorPagingReachesEveryPostOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("pages"))
		want := map[string]bool{}
		for i := range 45 {
			want[s.addPost(a.Access, fmt.Sprint("post ", i))] = true
		}
		seen := map[string]int{}
		query := "?limit=10"
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("cursor paging does not end")
			}
			p, _ := s.list(a.Access, query)
			for i, post := range p.Posts {
				seen[post.ID]++
				if i > 0 && post.ID >= p.Posts[i-1].ID {
					t.Fatal("posts are not newest first")
				}
			}
			s.addPost(a.Access, "added while paging") // newer than every cursor: must not shift pages
			if p.NextCursor == nil {
				break
			}
			query = "?limit=10&cursor=" + *p.NextCursor
		}
		for id := range want {
			if seen[id] != 1 {
				t.Errorf("post %s seen %d times", id, seen[id])
			}
		}
		p, _ := s.list(a.Access, "")
		if len(p.Posts) != 20 {
			t.Errorf("default limit: %d posts, want 20", len(p.Posts))
		}
		for _, q := range []string{"?limit=0", "?limit=101", "?limit=abc", "?limit=-1", "?cursor=bogus!", "?cursor=" + strings.Repeat("A", 500)} {
			expectProblem(t, s.do("GET", "/api/v1/posts"+q, a.Access, nil), http.StatusUnprocessableEntity, "validation_failed")
		}
		// 45 posts plus one added after each of the 5 pages.
		if p, _ := s.list(a.Access, "?limit=100"); len(p.Posts) != 50 {
			t.Errorf("limit=100: %d posts, want 50", len(p.Posts))
		}
	})
}

func TestConcurrentWritersLoseNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("writers"))
		const writers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan string, writers*each)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					body, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("writer %d post %d", w, i)})
					req, _ := http.NewRequest("POST", s.base+"/api/v1/posts", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+a.Access)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						errs <- err.Error()
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						errs <- fmt.Sprint("status ", resp.StatusCode)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		texts := map[string]bool{}
		query := "?limit=100"
		for {
			p, _ := s.list(a.Access, query)
			for _, post := range p.Posts {
				texts[post.Text] = true
			}
			if p.NextCursor == nil {
				break
			}
			query = "?limit=100&cursor=" + *p.NextCursor
		}
		if len(texts) != writers*each {
			t.Fatalf("%d distinct posts stored, want %d", len(texts), writers*each)
		}
	})
}

func TestDataSurvivesARestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("restart"))
		id := s.addPost(a.Access, "still here")
		s.restart()
		// The development secret is kept in the data folder, so old tokens stay valid.
		expect(t, s.do("GET", "/api/v1/posts/"+id, a.Access, nil), http.StatusOK)
		login := s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": a.Email, "password": a.Password})
		expect(t, login, http.StatusOK)
		p, _ := s.list(login.JSON(t)["access_token"].(string), "")
		if len(p.Posts) != 1 || p.Posts[0].Text != "still here" {
			t.Fatalf("after restart: %+v", p)
		}
	})
}
