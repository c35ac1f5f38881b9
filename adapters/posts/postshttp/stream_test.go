package postshttp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports/posts"
	"github.com/gin-gonic/gin"
)

// The reference shapes: what encoding/json makes of a post and a page is what the streamed
// responses must be, byte for byte.
type (
	refPost struct {
		ID        string `json:"id"`
		Text      string `json:"text"`
		CreatedAt string `json:"created_at"`
	}
	refPage struct {
		Posts      []refPost `json:"posts"`
		NextCursor *string   `json:"next_cursor"`
	}
)

func refEncode(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func refOf(p *post.Post) refPost {
	return refPost{ID: string(p.ID()), Text: p.Text(), CreatedAt: httpapi.Timestamp(p.CreatedAt())}
}

// awkwardTexts covers every escaping rule: quotes, backslashes, each control character, HTML
// characters (not escaped), DEL, U+2028/U+2029, multi-byte runes, invalid UTF-8, long runs.
func awkwardTexts() []string {
	var controls strings.Builder
	for b := range 0x20 {
		controls.WriteByte(byte(b))
	}
	texts := []string{
		"", "plain", `"quoted" \back\slash`, controls.String(), "<a href='x'>&amp;</a>\x7f",
		"line\u2028para\u2029end", "é€😀 mixed", "bad \xff\xfe utf-8 \xe2\x82", strings.Repeat("\x01", 70000),
		strings.Repeat("a", 3*32<<10+7), strings.Repeat(`"`, 32<<10+1),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, r.IntN(300))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		texts = append(texts, string(b))
	}
	return texts
}

// record runs write against a recorder and checks the Content-Length it declared.
func record(t *testing.T, write func(c *gin.Context)) []byte {
	t.Helper()
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
	write(c)
	body := w.Body.Bytes()
	if got := w.Header().Get("Content-Length"); got != strconv.Itoa(len(body)) {
		t.Fatalf("Content-Length %s for a body of %d bytes", got, len(body))
	}
	return body
}

func TestStreamedPostsMatchEncodingJSON(t *testing.T) {
	created := time.Date(2030, 1, 2, 3, 4, 5, 600000000, time.UTC)
	var all []*post.Post
	for i, text := range awkwardTexts() {
		all = append(all, post.Rehydrate(post.ID("0190b6d6-8f3c-7a41-9c1e-"+strconv.Itoa(100000+i)), "u", text, created))
	}
	for _, p := range all {
		got := record(t, func(c *gin.Context) { writePost(c, http.StatusCreated, p) })
		if want := refEncode(t, refOf(p)); !bytes.Equal(got, want) {
			t.Fatalf("post with text %q:\n got %s\nwant %s", truncate(p.Text()), truncate(string(got)), truncate(string(want)))
		}
		if int64(len(got)) != PostWireBytes(p)+1 {
			t.Fatalf("PostWireBytes = %d for %d encoded bytes", PostWireBytes(p), len(got)-1)
		}
		if bound := PostWireBytesBound(p.ID(), int64(len(p.Text()))); PostWireBytes(p) > bound {
			t.Fatalf("PostWireBytesBound = %d, under PostWireBytes = %d, for text %q", bound, PostWireBytes(p), truncate(p.Text()))
		}
	}
	pages := []posts.PostPage{
		{Posts: nil},
		{Posts: all[:1], NextCursor: "MDE5MGI2ZDY"},
		{Posts: all, NextCursor: ""},
	}
	// Cached pages are written from their kept rendering: the same bytes, on the first hit
	// (which renders) and on the next (which must not render again), with a budget that
	// keeps it and with one too small to keep it.
	for _, limit := range []int{1 << 30, 10} {
		for _, page := range pages[:3] {
			rendered := page
			rendered.Rendered = posts.NewRendering(limit)
			pages = append(pages, rendered, rendered)
		}
	}
	for _, page := range pages {
		got := record(t, func(c *gin.Context) { writePostPage(c, page) })
		ref := refPage{Posts: make([]refPost, 0, len(page.Posts))}
		for _, p := range page.Posts {
			ref.Posts = append(ref.Posts, refOf(p))
		}
		if page.NextCursor != "" {
			ref.NextCursor = &page.NextCursor
		}
		if want := refEncode(t, ref); !bytes.Equal(got, want) {
			t.Fatalf("page of %d posts differs from encoding/json's", len(page.Posts))
		}
	}
}

// BenchmarkWritePostPage writes a page of three 1 MiB posts, the largest that fits the 4 MiB
// budget, and reports the bytes allocated per response: a few KiB, against the tens of MiB of
// encoding it into one buffer first (BenchmarkWritePostPageBuffered).
func BenchmarkWritePostPage(b *testing.B) {
	page := bigPage()
	b.ReportAllocs()
	for b.Loop() {
		c, _ := gin.CreateTestContext(discardWriter{httptest.NewRecorder()})
		writePostPage(c, page)
	}
}

func BenchmarkWritePostPageBuffered(b *testing.B) {
	page := bigPage()
	b.ReportAllocs()
	for b.Loop() {
		c, _ := gin.CreateTestContext(discardWriter{httptest.NewRecorder()})
		ref := refPage{}
		for _, p := range page.Posts {
			ref.Posts = append(ref.Posts, refOf(p))
		}
		httpapi.WriteJSON(c, http.StatusOK, ref)
	}
}

func bigPage() posts.PostPage {
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var page posts.PostPage
	for i := range 3 {
		page.Posts = append(page.Posts, post.Rehydrate(post.ID(strconv.Itoa(i)), "u", strings.Repeat("prose ", post.MaxTextBytes/6), created))
	}
	return page
}

// discardWriter is a ResponseWriter that keeps headers but drops the body, so the benchmark
// measures the encoder, not the recorder's buffer.
type discardWriter struct{ *httptest.ResponseRecorder }

func (discardWriter) Write(p []byte) (int, error)       { return len(p), nil }
func (discardWriter) WriteString(s string) (int, error) { return len(s), nil }

func truncate(s string) string {
	if len(s) > 80 && utf8.ValidString(s[:80]) {
		return s[:80] + "..."
	}
	if len(s) > 80 {
		return "(invalid UTF-8) " + strconv.Quote(s[:80])
	}
	return s
}

// TestRenderingIsMadeOnce checks posts.Rendering: a rendering within its budget is made once
// and shared; one over it (by its own report or by its length) is attempted once and then
// never again, every call answering false so that the page is streamed; a nil one renders
// nothing.
func TestRenderingIsMadeOnce(t *testing.T) {
	var calls, gotLimit int
	fits := func(limit int) ([]byte, bool) { calls++; gotLimit = limit; return []byte("0123456789"), true }
	kept := posts.NewRendering(10)
	for range 3 {
		if got, ok := kept.Bytes(fits); !ok || string(got) != "0123456789" {
			t.Fatalf("Bytes = %q, %v", got, ok)
		}
	}
	if calls != 1 || gotLimit != 10 {
		t.Fatalf("a rendering within its budget was made %d times with limit %d, want once with 10", calls, gotLimit)
	}
	for _, c := range []struct {
		name   string
		limit  int
		render func(int) ([]byte, bool)
	}{
		{"longer than its budget", 9, fits},
		{"reported over its budget", 100, func(int) ([]byte, bool) { calls++; return nil, false }},
	} {
		calls = 0
		over := posts.NewRendering(c.limit)
		for range 3 {
			if got, ok := over.Bytes(c.render); ok || got != nil {
				t.Fatalf("%s: Bytes = %q, %v; want nothing, false", c.name, got, ok)
			}
		}
		if calls != 1 {
			t.Fatalf("%s: rendered %d times for 3 calls, want once", c.name, calls)
		}
	}
	// Many hits at once on a fresh rendering still render it once, and all get its bytes.
	var concurrent atomic.Int32
	shared := posts.NewRendering(10)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			got, ok := shared.Bytes(func(int) ([]byte, bool) { concurrent.Add(1); return []byte("0123456789"), true })
			if !ok || string(got) != "0123456789" {
				t.Errorf("concurrent Bytes = %q, %v", got, ok)
			}
		})
	}
	wg.Wait()
	if n := concurrent.Load(); n != 1 {
		t.Fatalf("16 concurrent hits rendered %d times, want once", n)
	}
	calls = 0
	var none *posts.Rendering
	if _, ok := none.Bytes(fits); ok || calls != 0 {
		t.Fatalf("a nil rendering answered %v after %d renders", ok, calls)
	}
}

// TestOverBudgetPageIsStreamedWithinItsBudget writes a cached page of one 1 MiB post that
// escapes six-fold (6 MiB on the wire) from a rendering budgeted as the cache budgets it, as
// 64 clients hitting it would: every answer must be the full page, and no answer may allocate
// the page's wire size (a buffered rendering made on every hit took 6 MiB and more each).
func TestOverBudgetPageIsStreamedWithinItsBudget(t *testing.T) {
	text := strings.Repeat("\x01", post.MaxTextBytes)
	p := post.Rehydrate("0190b6d6-0000-7000-8000-000000000001", "u", text, time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	page := posts.PostPage{Posts: []*post.Post{p}}
	wire := pageWireBytes(page)
	if wire < 6*int64(post.MaxTextBytes) {
		t.Fatalf("the page is %d bytes on the wire; the test wants a six-fold escaping one", wire)
	}
	page.Rendered = posts.NewRendering(len(text)*9/8 + 1024) // what postcache's renderBudget gives it
	for i := range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(discardWriter{rec})
		writePostPage(c, page)
		runtime.ReadMemStats(&after)
		if got := rec.Header().Get("Content-Length"); got != strconv.FormatInt(wire, 10) {
			t.Fatalf("answer %d: Content-Length %q, want %d", i, got, wire)
		}
		allocated := after.TotalAlloc - before.TotalAlloc
		if i > 0 && allocated > uint64(len(text)) {
			t.Fatalf("answer %d allocated %d bytes for a page of %d on the wire; want it streamed", i, allocated, wire)
		}
	}
	if _, ok := page.Rendered.Bytes(func(int) ([]byte, bool) { t.Fatal("rendered again"); return nil, false }); ok {
		t.Fatal("an over-budget rendering was kept")
	}
}

// TestPageWireEstimateCoversPlainPages checks that a rendering's buffer is sized from the
// lengths alone without falling short when nothing needs escaping (it would then grow and
// copy), whatever the timestamps' precision and the cursor, and that it does not overshoot by
// more than a few bytes per post.
func TestPageWireEstimateCoversPlainPages(t *testing.T) {
	times := []time.Time{
		time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC),
		time.Date(2030, 1, 2, 3, 4, 5, 100000000, time.FixedZone("x", 3600)),
	}
	for n := range 25 {
		var page posts.PostPage
		for i := range n {
			page.Posts = append(page.Posts, post.Rehydrate(post.ID(fmt.Sprintf("0190%032d", i)), "u",
				strings.Repeat("plain ", i*7+1), times[i%len(times)]))
		}
		if n%2 == 1 {
			page.NextCursor = "c2Vjb25kIHBhZ2U"
		}
		exact, estimate := pageWireBytes(page), pageWireEstimate(page)
		if estimate < exact || estimate > exact+int64(8+len("null"))+int64(16*n) {
			t.Fatalf("%d posts: estimate %d, exact %d", n, estimate, exact)
		}
	}
}
