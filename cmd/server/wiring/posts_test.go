package wiring

import (
	"github.com/acme/postsvc/config"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/posts/post"
)

// TestPostsSettingsMeasureInWireBytes checks that the posts use case counts a page in the
// bytes the HTTP module writes, and is handed a bound of them, so that a page that fits
// whatever its texts hold is not measured text by text.
func TestPostsSettingsMeasureInWireBytes(t *testing.T) {
	s := postsSettings(config.Posts{})
	if s.PostSize == nil || s.PostSizeBound == nil {
		t.Fatalf("postsSettings: PostSize set %v, PostSizeBound set %v; want both", s.PostSize != nil, s.PostSizeBound != nil)
	}
	p := post.Rehydrate("0190b6d6-8f3c-7a41-9c1e-000000000001", "u", "\x01\"é\u2028", time.Now())
	if size, bound := s.PostSize(p), s.PostSizeBound(p.ID(), int64(len(p.Text()))); size > bound || size <= int64(len(p.Text())) {
		t.Fatalf("PostSize %d, PostSizeBound %d for a text of %d bytes", size, bound, len(p.Text()))
	}
}
