package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports/accounts"
)

func TestMalformedBodies(t *testing.T) {
	cases := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
		detail      string // a substring the detail must contain
	}{
		{"truncated", "application/json", `{"email":`, 400, "malformed_request", "complete"},
		{"syntax", "application/json", `{"email" "a@x.io"}`, 400, "malformed_request", "not valid JSON"},
		{"number for string", "application/json", `{"email":5,"password":"password1"}`, 400, "malformed_request", `"email" must be a string`},
		{"object for string", "application/json", `{"email":"a@x.io","password":{"x":1}}`, 400, "malformed_request", `"password" must be a string`},
		{"null for string", "application/json", `{"email":null,"password":"password1"}`, 400, "malformed_request", `"email" must be a string, not null`},
		{"array body", "application/json", `["a@x.io"]`, 400, "malformed_request", "JSON object"},
		{"string body", "application/json", `"a@x.io"`, 400, "malformed_request", "JSON object"},
		{"null body", "application/json", `null`, 400, "malformed_request", "JSON object"},
		{"empty body", "application/json", ``, 400, "malformed_request", "empty"},
		{"whitespace body", "application/json", " \n\t ", 400, "malformed_request", "empty"},
		{"trailing object", "application/json", `{"email":"a@x.io"} {"email":"b@x.io"}`, 400, "malformed_request", "nothing after it"},
		{"trailing garbage", "application/json", `{"email":"a@x.io"}garbage`, 400, "malformed_request", "nothing after it"},
		{"invalid utf-8", "application/json", "{\"email\":\"a\xff@x.io\",\"password\":\"password1\"}", 400, "malformed_request", "UTF-8"},
		// A byte order mark is named as such, not as a missing object (it used to be).
		{"byte order mark", "application/json", "\ufeff{\"email\":\"a@x.io\",\"password\":\"password1\"}", 400, "malformed_request", "byte order mark"},
		{"utf-16 with its mark", "application/json", "\xff\xfe{\x00}\x00", 400, "malformed_request", "UTF-8"},
		{"plain text", "text/plain", `{"email":"a@x.io","password":"password1"}`, 415, "unsupported_media_type", "application/json"},
		{"no content type", "", `{"email":"a@x.io","password":"password1"}`, 415, "unsupported_media_type", "application/json"},
		{"latin-1 charset", "application/json; charset=iso-8859-1", `{"email":"a@x.io","password":"password1"}`, 415, "unsupported_media_type", "application/json"},
		{"form", "application/x-www-form-urlencoded", `email=a@x.io`, 415, "unsupported_media_type", "application/json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			req := httptest.NewRequest("POST", "/api/v1/auth/signup", strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			p := assertProblem(t, hs.serve(req), tc.status, tc.code)
			if !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("detail %q lacks %q", p.Detail, tc.detail)
			}
			if hs.auth.count() != 0 {
				t.Fatal("the use case ran on a malformed request")
			}
		})
	}
}

func TestAcceptedBodies(t *testing.T) {
	cases := []struct {
		name, contentType, body string
	}{
		{"plain", "application/json", `{"email":"a@x.io","password":"password1","name":"Ann"}`},
		{"charset", "application/json; charset=UTF-8", `{"email":"a@x.io","password":"password1","name":"Ann"}`},
		{"unknown fields ignored", "application/json", `{"email":"a@x.io","password":"password1","name":"Ann","role":"admin","extra":[1,2]}`},
		{"surrounding whitespace", "application/json", "\n {\"email\":\"a@x.io\",\"password\":\"password1\",\"name\":\"Ann\"} \n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			req := httptest.NewRequest("POST", "/api/v1/auth/signup", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			rec := hs.serve(req)
			if rec.Code != http.StatusCreated {
				t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
			}
			_, arg := hs.auth.last()
			// The client's address reaches the use case too: signups are throttled per address.
			if in := arg.(accounts.SignupInput); in != (accounts.SignupInput{Email: "a@x.io", Password: "password1", Name: "Ann", ClientAddr: "192.0.2.1"}) {
				t.Fatalf("Signup got %+v", in)
			}
		})
	}
}

// countingReader yields an endless JSON-looking body and counts what is read from it.
type countingReader struct {
	t     *testing.T
	read  atomic.Int64
	limit int64
	first bool
}

func (r *countingReader) Read(p []byte) (int, error) {
	if !r.first {
		r.first = true
		return copy(p, `{"text":"`), nil
	}
	for i := range p {
		p[i] = 'a'
	}
	if n := r.read.Add(int64(len(p))); n > r.limit {
		r.t.Errorf("read %d bytes of an oversized body, more than %d", n, r.limit)
		return 0, io.ErrUnexpectedEOF
	}
	return len(p), nil
}

func TestOversizedPostIsRefusedBeforeReading(t *testing.T) {
	hs := newHarness(t)
	body := &countingReader{t: t, limit: 1 << 20}
	req := httptest.NewRequest("POST", "/api/v1/posts", body)
	req.ContentLength = 64 << 20
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+userToken)
	rec := hs.serve(req)
	assertProblem(t, rec, http.StatusRequestEntityTooLarge, "payload_too_large")
	if got := body.read.Load(); got != 0 {
		t.Fatalf("read %d bytes of a body declared too large", got)
	}
	if rec.Header().Get("Connection") != "close" {
		t.Fatalf("Connection = %q, want close", rec.Header().Get("Connection"))
	}
	if hs.posts.count() != 0 {
		t.Fatal("the use case ran")
	}
}

func TestOversizedChunkedPostStopsAtTheLimit(t *testing.T) {
	hs := newHarness(t)
	body := &countingReader{t: t, limit: 6<<20 + 4096 + 64<<10}
	req := httptest.NewRequest("POST", "/api/v1/posts", body)
	req.ContentLength = -1 // unknown length, as with chunked transfer encoding
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+userToken)
	assertProblem(t, hs.serve(req), http.StatusRequestEntityTooLarge, "payload_too_large")
	if hs.posts.count() != 0 {
		t.Fatal("the use case ran")
	}
}

func TestPostTextSizeLimits(t *testing.T) {
	// Every byte of this text is escaped as \u00XX: the worst case for the body limit.
	escaped := func(n int) string { return strings.Repeat("\x01", n) }
	cases := []struct {
		name   string
		text   string
		status int
	}{
		{"1 MiB, fully escaped", escaped(post.MaxTextBytes), 201},
		{"1 MiB of multi-byte text", strings.Repeat("é", post.MaxTextBytes/2), 201},
		{"1 MiB with quotes and markup", strings.Repeat(`<"&\>`, post.MaxTextBytes/5) + "x", 201},
		{"1 MiB + 1 byte, fully escaped", escaped(post.MaxTextBytes + 1), 413},
		{"1 MiB + 1 byte", strings.Repeat("a", post.MaxTextBytes+1), 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			body, err := json.Marshal(map[string]string{"text": tc.text})
			if err != nil {
				t.Fatal(err)
			}
			rec := hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: string(body)})
			if tc.status == 413 {
				assertProblem(t, rec, 413, "payload_too_large")
				return
			}
			if rec.Code != tc.status {
				t.Fatalf("status = %d: %.200s", rec.Code, rec.Body.String())
			}
			if _, arg := hs.posts.last(); arg != tc.text {
				t.Fatal("the use case did not receive the text byte for byte")
			}
			var got struct{ Text string }
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Text != tc.text {
				t.Fatalf("response text differs from the sent text (err %v)", err)
			}
		})
	}
}

func TestLogoutBody(t *testing.T) {
	cases := []struct {
		name        string
		body        string
		contentType string
		status      int
		token       string
	}{
		{"no body", "", "", 204, ""},
		{"empty JSON body", "", "application/json", 204, ""},
		{"empty object", "{}", "application/json", 204, ""},
		{"refresh token", `{"refresh_token":"r-1"}`, "application/json", 204, "r-1"},
		{"body without content type", `{"refresh_token":"r-1"}`, "", 415, ""},
		{"wrong type", `{"refresh_token":1}`, "application/json", 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			req := httptest.NewRequest("POST", "/api/v1/auth/logout", bytes.NewReader([]byte(tc.body)))
			if tc.body == "" {
				req.ContentLength = 0
			}
			req.Header.Set("Authorization", "Bearer "+userToken)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := hs.serve(req)
			if rec.Code != tc.status {
				t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
			}
			if tc.status != 204 {
				return
			}
			if rec.Body.Len() != 0 {
				t.Fatalf("204 with a body: %q", rec.Body.String())
			}
			if name, arg := hs.auth.last(); name != "Logout" || arg != tc.token {
				t.Fatalf("last call %s(%v), want Logout(%q)", name, arg, tc.token)
			}
		})
	}
	// A chunked empty body (unknown length) is an empty body too.
	hs := newHarness(t)
	req := httptest.NewRequest("POST", "/api/v1/auth/logout", strings.NewReader(""))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+userToken)
	if rec := hs.serve(req); rec.Code != 204 {
		t.Fatalf("chunked empty logout = %d: %s", rec.Code, rec.Body.String())
	}
}

// TestFieldNamesMatchExactly: a case variant of a field name is an unknown field (ignored),
// never an alias that overrides the real one, whichever comes first.
func TestFieldNamesMatchExactly(t *testing.T) {
	cases := []struct {
		name, body string
		want       accounts.SignupInput
	}{
		{"variant after", `{"email":"a@x.io","EMAIL":"evil@x.io","password":"password1"}`, accounts.SignupInput{Email: "a@x.io", Password: "password1"}},
		{"variant before", `{"EMAIL":"evil@x.io","email":"a@x.io","password":"password1"}`, accounts.SignupInput{Email: "a@x.io", Password: "password1"}},
		{"variant alone", `{"Email":"a@x.io","Password":"password1"}`, accounts.SignupInput{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			if rec := hs.do(request{Method: "POST", Path: "/api/v1/auth/signup", Body: tc.body}); rec.Code != http.StatusCreated {
				t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
			}
			_, arg := hs.auth.last()
			if in, ok := arg.(accounts.SignupInput); !ok || in.Email != tc.want.Email || in.Password != tc.want.Password || in.Name != tc.want.Name {
				t.Fatalf("Signup got %+v, want %+v", arg, tc.want)
			}
		})
	}
	hs := newHarness(t)
	hs.do(request{Method: "PATCH", Path: "/api/v1/users/me", Token: userToken, Body: `{"NAME":"Mallory"}`})
	if _, arg := hs.auth.last(); arg.(accounts.ProfileUpdate).Name != nil {
		t.Fatalf("UpdateMe got %+v: NAME must not set name", arg)
	}
}

func TestDuplicateFieldIsMalformed(t *testing.T) {
	hs := newHarness(t)
	p := assertProblem(t, hs.do(request{Method: "POST", Path: "/api/v1/auth/login",
		Body: `{"email":"a@x.io","password":"password1","email":"b@x.io"}`}), 400, "malformed_request")
	if !strings.Contains(p.Detail, "more than once") || strings.Contains(p.Detail, "b@x.io") {
		t.Fatalf("detail = %q", p.Detail)
	}
	if hs.auth.count() != 0 {
		t.Fatal("the use case ran")
	}
}

// TestLoneSurrogatesAreRefused covers every text field of every JSON body: a \uXXXX escape of
// a surrogate that is not half of a valid pair is not text, and must not turn into U+FFFD.
func TestLoneSurrogatesAreRefused(t *testing.T) {
	endpoints := []struct {
		method, path, token string
		fields              []string
	}{
		{"POST", "/api/v1/auth/signup", "", []string{"email", "password", "name"}},
		{"POST", "/api/v1/auth/login", "", []string{"email", "password"}},
		{"POST", "/api/v1/auth/refresh", "", []string{"refresh_token"}},
		{"POST", "/api/v1/auth/logout", userToken, []string{"refresh_token"}},
		{"PATCH", "/api/v1/users/me", userToken, []string{"name"}},
		{"POST", "/api/v1/posts", userToken, []string{"text"}},
		{"POST", "/api/v1/admin/users", adminToken, []string{"email", "password", "name", "role"}},
		{"PATCH", "/api/v1/admin/users/u-alice", adminToken, []string{"name", "role"}},
	}
	escapes := map[string]string{
		"lone high":     `\ud800`,
		"lone low":      `\udfff`,
		"reversed pair": `\udc00\ud800`,
		"high then BMP": `\ud800\u0041`,
		"high at end":   `x\udbff`,
	}
	for _, ep := range endpoints {
		for _, field := range append(ep.fields, "unknown_field") {
			for name, esc := range escapes {
				t.Run(ep.method+" "+ep.path+"/"+field+"/"+name, func(t *testing.T) {
					hs := newHarness(t)
					body := `{"` + field + `":"a` + esc + `b"}`
					p := assertProblem(t, hs.do(request{Method: ep.method, Path: ep.path, Token: ep.token, Body: body}), 400, "malformed_request")
					if !strings.Contains(p.Detail, "not valid Unicode") {
						t.Fatalf("detail = %q, want one that says the text is not valid Unicode", p.Detail)
					}
					if hs.auth.count()+hs.posts.count()+hs.admin.count() != 0 {
						t.Fatal("the use case ran")
					}
				})
			}
		}
	}
}

// TestSurrogatePairsAreText: a valid pair is one character, decoded as such.
func TestSurrogatePairsAreText(t *testing.T) {
	hs := newHarness(t)
	rec := hs.do(request{Method: "POST", Path: "/api/v1/posts", Token: userToken, Body: `{"text":"smile \ud83d\ude00 \uD83C\uDF89"}`})
	if rec.Code != http.StatusCreated {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
	}
	if _, arg := hs.posts.last(); arg != "smile 😀 🎉" {
		t.Fatalf("Add got %q", arg)
	}
}

// deadlineReader yields a start of body, then fails as a connection does when its read
// deadline (http.Server.ReadTimeout) has passed.
type deadlineReader struct{ sent bool }

func (r *deadlineReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, `{"text":"aaaa`), nil
	}
	return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
}

// TestBodyCutOffByTheReadTimeoutIs408: a client too slow to send its body gets 408
// request_timeout, not a 400 (the request is not malformed) and not a 503 (no dependency
// failed), and nothing is logged as a dependency failure.
func TestBodyCutOffByTheReadTimeoutIs408(t *testing.T) {
	for _, r := range []request{
		{Method: "POST", Path: "/api/v1/posts", Token: userToken},
		{Method: "POST", Path: "/api/v1/auth/signup"},
		{Method: "POST", Path: "/api/v1/auth/logout", Token: userToken},
	} {
		hs := newHarness(t)
		req := httptest.NewRequest(r.Method, r.Path, &deadlineReader{})
		req.Header.Set("Content-Type", "application/json")
		if r.Token != "" {
			req.Header.Set("Authorization", "Bearer "+r.Token)
		}
		rec := hs.serve(req)
		assertProblem(t, rec, http.StatusRequestTimeout, "request_timeout")
		if rec.Header().Get("Connection") != "close" {
			t.Fatalf("%s: Connection = %q, want close", r.Path, rec.Header().Get("Connection"))
		}
		if hs.auth.count()+hs.posts.count() != 0 {
			t.Fatalf("%s: the use case ran", r.Path)
		}
		if logs := hs.logs.String(); strings.Contains(logs, "unavailable") || strings.Contains(logs, `"level":"WARN"`) {
			t.Fatalf("%s: logged as a failure:\n%s", r.Path, logs)
		}
	}
}

// TestSlowBodyOverTheWireGets408 sends the headers and the start of a body on a real
// connection and then stalls: once the server's read timeout passes, the client reads a 408
// problem document, even though the write timeout started (and so ends) at about the same
// moment as the read timeout.
func TestSlowBodyOverTheWireGets408(t *testing.T) {
	hs := newHarness(t)
	srv := httptest.NewUnstartedServer(hs.h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = fmt.Fprintf(conn, "POST /api/v1/posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"text\":\"aaaa", userToken)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response to a stalled body: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestTimeout || !res.Close || !strings.Contains(string(body), `"code":"request_timeout"`) {
		t.Fatalf("status = %d, close = %v, body %s; want 408 request_timeout and a closed connection", res.StatusCode, res.Close, body)
	}
	if hs.posts.count() != 0 {
		t.Fatal("the use case ran")
	}
}
