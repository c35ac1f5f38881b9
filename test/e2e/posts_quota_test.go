package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPostsQuotaHoldsUnderConcurrentAdds: with APP_POSTS_QUOTA_BYTES set, 12 adds of one user
// at once with room for 3.5 of them store exactly 3, the rest get 403 quota_exceeded and are
// not stored, the list shows what was stored (and nothing else), a delete makes room at once,
// and another user is not affected. Before the quota, one account could store posts without
// limit.
func TestPostsQuotaHoldsUnderConcurrentAdds(t *testing.T) {
	t.Parallel()
	const (
		adds     = 12
		textSize = 1000
		quota    = 3*textSize + textSize/2
	)
	forEachBackendWith(t, []string{"APP_POSTS_QUOTA_BYTES=" + strconv.Itoa(quota)}, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("posts-quota"))
		other := s.signup(uniqueEmail("posts-quota-other"))
		s.addPost(other.Access, strings.Repeat("o", quota))

		start := make(chan struct{})
		answers := make([]response, adds)
		errs := make([]error, adds)
		var wg sync.WaitGroup
		for i := range adds {
			wg.Go(func() {
				body, _ := json.Marshal(map[string]string{"text": strings.Repeat(strconv.Itoa(i%10), textSize)})
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				answers[i], errs[i] = s.try(ctx, nil, "POST", "/api/v1/posts", a.Access, bytes.NewReader(body),
					map[string]string{"Content-Type": "application/json"})
			})
		}
		close(start)
		wg.Wait()
		var stored []string
		for i, r := range answers {
			switch {
			case errs[i] != nil:
				t.Fatalf("add %d: %v", i, errs[i])
			case r.Status == http.StatusCreated:
				id, _ := r.JSON(t)["id"].(string)
				stored = append(stored, id)
			case r.Status == http.StatusForbidden && problemCode(r) == "quota_exceeded":
			default:
				t.Fatalf("add %d: status %d (code %q), want 201 or 403 quota_exceeded: %s", i, r.Status, problemCode(r), truncate(r.Body))
			}
		}
		if len(stored) != 3 {
			t.Fatalf("%d of %d concurrent adds of %d bytes stored under a quota of %d, want 3", len(stored), adds, textSize, quota)
		}
		p, _ := s.list(a.Access, "")
		if len(p.Posts) != 3 {
			t.Fatalf("the list shows %d posts, want the 3 stored", len(p.Posts))
		}
		// Full: even one byte is refused, with a detail that says what to do.
		r := s.do("POST", "/api/v1/posts", a.Access, map[string]any{"text": strings.Repeat("x", textSize/2+1)})
		if d := expectProblem(t, r, http.StatusForbidden, "quota_exceeded")["detail"]; !strings.Contains(d.(string), "delete") {
			t.Fatalf("detail %q does not say how to make room", d)
		}
		// A delete makes room for the next add at once.
		expect(t, s.do("DELETE", "/api/v1/posts/"+stored[0], a.Access, nil), http.StatusNoContent)
		s.addPost(a.Access, strings.Repeat("y", textSize+textSize/2))
		// The other user, at their own quota, was never counted with the first.
		expectProblem(t, s.do("POST", "/api/v1/posts", other.Access, map[string]any{"text": "z"}), http.StatusForbidden, "quota_exceeded")
	})
}
