package ecghttp

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/ecg/ecg"
)

// FuzzDecodeECGGzip fuzzes the ECG body decoder behind the HTTP kernel, as the upload route
// reads it (httpapi.StreamJSON on a route that accepts gzip, decodeECG, decodeFailed), with
// the body sent gzip-compressed, and with the fuzzer's bytes sent as the gzip stream itself.
// FuzzDecodeECG covers the decoder on plain bodies; here:
//
//   - differential against the encoding/json reference (refDecode) through gzip: a body sent
//     compressed gets the reference's class (400, 422 or accepted, with the same draft and
//     samples) and exactly the answer the same body gets sent plain;
//   - over the route's limit once decompressed, a body is refused while it is read: 413, or
//     the 400 or 422 of an error met before the limit, and a body the reference accepts is
//     always 413 (a gzip bomb is never inflated past the limit);
//   - a stream that is not gzip, or is cut short, is answered 400, 413 or 422 (an error met in
//     what did decompress): never accepted, never a 5xx; one that decompresses within the
//     limit is answered as its decompressed bytes sent plain;
//   - memory: besides the buffers a pooled decoder keeps, decoding allocates at most twice the
//     body plus a constant, whatever its samples, members, names and nesting.
func FuzzDecodeECGGzip(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s), false)
	}
	f.Add(gzipECG(f, ecgBody(2, 20)), true)
	f.Add(gzipECG(f, ecgBody(1, 3))[:25], true)
	f.Add(append(gzipECG(f, []byte(`{"leads":[{"signal":[1,`)), gzipECG(f, []byte(`2,3]}]}`))...), true)
	f.Add(append(gzipECG(f, ecgBody(1, 3)), "trailing"...), true)
	f.Add(gzipECG(f, []byte(`{"leads":[{"signal":[`+strings.Repeat("0,", gzipFuzzLimit)+`0]}]}`)), true)
	f.Add([]byte("not gzip"), true)
	f.Add([]byte{}, true)
	h := newGzipFuzzHarness(f)
	f.Fuzz(func(t *testing.T, body []byte, raw bool) {
		if raw {
			got := h.post(t, body, true)
			plain, ok := gunzipECGReference(body)
			if !ok || len(plain) > gzipFuzzLimit {
				if got.status != 400 && got.status != 413 && got.status != 422 {
					t.Fatalf("a stream that is not gzip within the limit (ok %v, %d bytes out): %s", ok, len(plain), got)
				}
				return
			}
			if want := h.post(t, plain, false); !got.same(want) {
				t.Fatalf("as the gzip stream: %s\nits %d bytes plain: %s", got, len(plain), want)
			}
			return
		}
		got := h.post(t, gzipECG(t, body), true)
		want := refDecode(body)
		if len(body) > gzipFuzzLimit {
			if got.status != 413 && (got.status != 400 && got.status != 422 || !want.invalid && !want.unprocessable) {
				t.Fatalf("%d bytes decompressed, over the %d limit: %s", len(body), gzipFuzzLimit, got)
			}
			return
		}
		switch {
		case want.invalid:
			if got.status != 400 && got.status != 422 {
				t.Fatalf("the reference refuses it (%s): %s", want.why, got)
			}
		case want.unprocessable:
			if got.status != 422 {
				t.Fatalf("want a 422: %s", got)
			}
		default:
			if got.status != 200 {
				t.Fatalf("refused a body the reference accepts: %s", got)
			}
			if draftView(got.draft) != draftView(want.draft) {
				t.Fatalf("draft\n%v\nwant\n%v", draftView(got.draft), draftView(want.draft))
			}
			for i, samples := range want.samples {
				if !slices.Equal(got.signals[i], samples) {
					t.Fatalf("lead %d: blocks hold %v, want %v", i, got.signals[i], samples)
				}
			}
		}
		if plain := h.post(t, body, false); !got.same(plain) {
			t.Fatalf("compressed: %s\nplain: %s", got, plain)
		}
		checkECGMemory(t, body)
	})
}

// gzipFuzzLimit is the fuzz route's body limit, decompressed.
const gzipFuzzLimit = 64 << 10

// gzipFuzzHarness is a router with one route that reads its body as the upload route does.
type gzipFuzzHarness struct {
	router http.Handler
	// What the last request decoded.
	draft ecg.Draft
	sink  *memSink
}

func newGzipFuzzHarness(tb testing.TB) *gzipFuzzHarness {
	tb.Helper()
	gin.SetMode(gin.ReleaseMode)
	h := &gzipFuzzHarness{}
	r, err := httpapi.NewRouter(httpapi.RouterDeps{Modules: []httpapi.Module{gzipFuzzModule{h}}})
	if err != nil {
		tb.Fatal(err)
	}
	h.router = r
	return h
}

type gzipFuzzModule struct{ h *gzipFuzzHarness }

func (m gzipFuzzModule) Register(r *httpapi.Routes) {
	r.Handle(httpapi.Route{
		Method: http.MethodPost, Path: "/fuzz/ecgs", Auth: httpapi.Public,
		BodyLimit: gzipFuzzLimit, Compressed: true,
		Handler: func(c *gin.Context) {
			body, ok := httpapi.StreamJSON(c)
			if !ok {
				return
			}
			m.h.sink = &memSink{}
			draft, err := decodeECG(body, m.h.sink)
			if err != nil {
				decodeFailed(c, err)
				return
			}
			m.h.draft = draft
			c.Status(http.StatusOK)
		},
	})
}

// gzipFuzzResult is the route's answer.
type gzipFuzzResult struct {
	status  int
	code    string
	detail  string
	draft   ecg.Draft
	signals map[int][]int32
}

func (r gzipFuzzResult) String() string {
	if r.status == 200 {
		return "accepted " + draftView(r.draft)
	}
	return http.StatusText(r.status) + " " + r.code + ": " + r.detail
}

func (r gzipFuzzResult) same(o gzipFuzzResult) bool {
	if r.status != o.status || r.code != o.code || r.detail != o.detail || draftView(r.draft) != draftView(o.draft) {
		return false
	}
	for i, s := range r.signals {
		if !slices.Equal(s, o.signals[i]) {
			return false
		}
	}
	return len(r.signals) == len(o.signals)
}

func (h *gzipFuzzHarness) post(t *testing.T, body []byte, gzipped bool) gzipFuzzResult {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/fuzz/ecgs", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	h.draft, h.sink = ecg.Draft{}, nil
	h.router.ServeHTTP(rec, req)
	if rec.Code == http.StatusOK {
		return gzipFuzzResult{status: 200, draft: h.draft, signals: h.sink.signals(t)}
	}
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("%d with %q: %v", rec.Code, rec.Body.String(), err)
	}
	switch rec.Code {
	case 400, 413, 422:
	default:
		t.Fatalf("answered %d: %s", rec.Code, rec.Body.String())
	}
	return gzipFuzzResult{status: rec.Code, code: p.Code, detail: p.Detail}
}

// ecgMemoryPerByte and ecgMemoryConstant bound what decoding a body allocates beyond the
// decoder's own buffers (its 64 KiB read buffer, the names arena, the SignalWriter's block),
// which the pool keeps from one upload to the next: the draft's strings and leads, names too
// long to keep (hashed), the Signal of each lead. Nothing is allocated per sample.
const (
	ecgMemoryPerByte  = 2
	ecgMemoryConstant = 32 << 10
)

// memDecoder is reused by hand, as the pool reuses decoders (see TestDecodeAllocations); it
// has decoded one body, so its buffers are grown.
var memDecoder = sync.OnceValue(func() *decoder {
	d := newDecoder()
	d.start(bytes.NewReader(ecgBody(2, 20)), discardSink{})
	if _, err := d.document(); err != nil {
		panic(err)
	}
	d.finish()
	return d
})

// checkECGMemory decodes body into a sink that keeps nothing, counting what it allocates.
func checkECGMemory(t *testing.T, body []byte) {
	t.Helper()
	d, r := memDecoder(), bytes.NewReader(body)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d.start(r, discardSink{})
	_, err := d.document()
	d.finish()
	runtime.ReadMemStats(&after)
	if got, bound := after.TotalAlloc-before.TotalAlloc, uint64(ecgMemoryPerByte*len(body)+ecgMemoryConstant); got > bound {
		t.Fatalf("decoding %d bytes allocated %d (bound %d); error %v", len(body), got, bound, err)
	}
}

// gunzipECGReference decompresses b with compress/gzip, reading at most one byte past the
// limit; ok is false when the stream is not valid gzip within that.
func gunzipECGReference(b []byte) ([]byte, bool) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, false
	}
	out, err := io.ReadAll(io.LimitReader(zr, gzipFuzzLimit+1))
	return out, err == nil || len(out) > gzipFuzzLimit
}

func gzipECG(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, _ := gzipWriters.Get().(*gzip.Writer)
	if zw == nil {
		zw = gzip.NewWriter(&buf)
	} else {
		zw.Reset(&buf)
	}
	defer gzipWriters.Put(zw)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// gzipWriters are reused: a new one allocates its compressor's tables, near a megabyte.
var gzipWriters sync.Pool
