package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tests of this file hold the service to the contract's rules on input (API.md,
// "Conventions"): HEAD on every GET route, a slow body answered 408 without eating the
// database budget, undecodable query strings and forged cursors refused, one account per
// email however it is composed, exact JSON field names and valid Unicode text.

// exchange sends one request with a raw body and explicit headers, outside the harness's
// OpenAPI hook (a HEAD answer has no body to validate).
func exchange(t *testing.T, s *server, method, path, token string, headers map[string]string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// TestInputHEADOnEveryGETRoute sends GET and then HEAD to every GET operation of the served
// OpenAPI document (probes, documentation, metrics and the API, authorised and not): HEAD
// gets the GET's status and headers, Content-Length included, and no body.
func TestInputHEADOnEveryGETRoute(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		sp := mustSpec(t, s)
		a := s.signup(uniqueEmail("head"))
		postID := s.addPost(a.Access, "hello")
		s.uploadECG(a.Access, makeECG("head-ecg", 2, 300, 1), http.StatusAccepted)
		imgs, _ := s.uploadImages(a.Access, [][2]string{{"visibility", "public"}}, []upload{{"head.png", pngFile(t, 300, 200)}}, http.StatusCreated)
		// Analysed first, so that the GET and the HEAD describe the same insights.
		if _, err := s.waitInsights(a.Access, "head-ecg", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		fill := map[string]string{
			"/api/v1/posts/{id}":            postID,
			"/api/v1/ecgs/{id}":             "head-ecg",
			"/api/v1/ecgs/{id}/insights":    "head-ecg",
			"/api/v1/admin/users/{id}":      a.ID,
			"/api/v1/images/{id}":           imgs[0].ID,
			"/api/v1/images/{id}/content":   imgs[0].ID,
			"/api/v1/images/{id}/thumbnail": imgs[0].ID,
			"/docs/{asset}":                 "swagger-ui-bundle.js", // served gzipped when asked
			"/problems/{code}":              "validation_failed",
		}
		param := regexp.MustCompile(`\{[^}]+\}`)
		var paths []string
		for path, item := range sp.doc.Paths.Map() {
			if item.Get != nil {
				paths = append(paths, path)
			}
		}
		slices.Sort(paths)
		if len(paths) < 10 {
			t.Fatalf("only %d GET operations documented: %v", len(paths), paths)
		}
		for _, path := range paths {
			url := path
			if param.MatchString(path) {
				v, ok := fill[path]
				if !ok {
					t.Fatalf("%s has a path parameter: add a value to this test", path)
				}
				url = param.ReplaceAllString(path, v)
			}
			token := a.Access
			if strings.HasPrefix(path, "/api/v1/admin/") {
				token = admin.Access
			}
			tokens := []string{token}
			if strings.HasPrefix(path, "/api/") {
				tokens = append(tokens, "") // and the 401 problem document
			}
			for _, tok := range tokens {
				// An explicit Accept-Encoding keeps Go's client from asking gzip for GET only
				// (it never does for HEAD) and from unpacking the body behind our back.
				h := map[string]string{"Accept-Encoding": "gzip"}
				get := exchange(t, s, "GET", url, tok, h)
				head := exchange(t, s, "HEAD", url, tok, h)
				what := fmt.Sprintf("HEAD %s (token %v)", url, tok != "")
				if get.Status == http.StatusMethodNotAllowed || head.Status == http.StatusMethodNotAllowed {
					t.Fatalf("%s: GET %d, HEAD %d", what, get.Status, head.Status)
				}
				if head.Status != get.Status {
					t.Errorf("%s = %d, GET = %d", what, head.Status, get.Status)
				}
				if len(head.Body) != 0 {
					t.Errorf("%s has a %d-byte body", what, len(head.Body))
				}
				for name := range get.Header {
					switch name {
					case "Date", "X-Request-Id":
						continue // differ by nature
					case "X-Cache":
						// The GET just cached the page the HEAD then finds.
						if head.Header.Get(name) == "" {
							t.Errorf("%s: no %s", what, name)
						}
						continue
					case "Content-Length", "Transfer-Encoding":
						if path == "/metrics" {
							continue // the counters grow between the two scrapes
						}
					}
					if g, h := get.Header.Values(name), head.Header.Values(name); !slices.Equal(g, h) {
						t.Errorf("%s: %s = %q, GET's is %q", what, name, h, g)
					}
				}
				if cl := get.Header.Get("Content-Length"); cl != "" && path != "/metrics" && cl != fmt.Sprint(len(get.Body)) {
					t.Errorf("GET %s: Content-Length %s for %d bytes", url, cl, len(get.Body))
				}
			}
		}
	})
}

// TestInputSlowBodyIs408 uploads a 1 MiB post over 3 s to a server whose read timeout is
// 1 s: the client gets a 408 request_timeout problem document (not a cut connection, not a
// 503), and the log says nothing about a dependency.
func TestInputSlowBodyIs408(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := startServer(t, b.env(t), withFastHashing("APP_HTTP_READ_TIMEOUT=1s", "APP_LOG_LEVEL=info")...)
			a := s.signup(uniqueEmail("slow408"))
			sp := mustSpec(t, s)
			r := pacedPost(t, s, a.Access, 3*time.Second)
			expectProblem(t, r, http.StatusRequestTimeout, "request_timeout")
			if err := sp.validate(mustRequest(t, "POST", s.base+"/api/v1/posts"), r); err != nil {
				t.Fatalf("the 408 does not match openapi.json: %v", err)
			}
			expect(t, s.do("GET", "/readyz", "", nil), http.StatusOK)
			logs := s.stderr.String()
			for _, bad := range []string{"dependency unavailable", "unhandled error", "status=503", "status=400"} {
				if strings.Contains(logs, bad) {
					t.Fatalf("a slow client was logged as a failure (%q):\n%s", bad, logs)
				}
			}
			if !strings.Contains(logs, "status=408") {
				t.Fatalf("the access log lacks the 408:\n%s", logs)
			}
		})
	}
}

// mustRequest builds a request for validating a response against the document.
func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// pacedPost posts a 1 MiB post whose body takes about d to send (see pacedBody) on a
// connection of its own, and returns the answer with its headers. The request asks to keep
// the connection alive, as browsers and curl do: for such a request net/http half-closes and
// lingers before closing a connection whose body it did not read, so the client reads the
// answer. (A request that says "Connection: close" gets its connection closed at once; the
// unread body then makes the kernel reset it, and the client may lose the answer.)
func pacedPost(t *testing.T, s *server, token string, d time.Duration) response {
	t.Helper()
	payload := []byte(`{"text":"` + strings.Repeat("x", 1<<20) + `"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", s.base+"/api/v1/posts", newPacedBody(payload, d))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(payload))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		t.Fatalf("no answer to a body sent over %s: %v", d, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// TestInputSlowBodyKeepsTheDatabaseBudget uploads a 1 MiB post over 2.5 s to a server whose
// request timeout is 1 s (and read timeout the default 60 s): the upload is within the read
// timeout, and the database work after it still has its budget, so the post is created
// rather than answered 503.
func TestInputSlowBodyKeepsTheDatabaseBudget(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := startServer(t, b.env(t), withFastHashing("APP_HTTP_REQUEST_TIMEOUT=1s", "APP_LOG_LEVEL=info")...)
			a := s.signup(uniqueEmail("slow201"))
			r := pacedPost(t, s, a.Access, 2500*time.Millisecond)
			if r.Status != http.StatusCreated {
				t.Fatalf("upload slower than the request timeout = %d %s, want 201", r.Status, truncate(r.Body))
			}
			if logs := s.stderr.String(); strings.Contains(logs, "dependency unavailable") {
				t.Fatalf("logged as a dependency failure:\n%s", logs)
			}
		})
	}
}

// TestInputUndecodableQueryStrings: on every list endpoint, a query string that cannot be
// decoded or repeats a parameter is 400 malformed_request, not the first page.
func TestInputUndecodableQueryStrings(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		a := s.signup(uniqueEmail("query"))
		s.addPost(a.Access, "one")
		endpoints := map[string]string{"/api/v1/posts": a.Access, "/api/v1/admin/users": admin.Access}
		for path, token := range endpoints {
			for _, q := range []string{"?cursor=%%%", "?limit=%zz", "?limit=5&limit=6", "?cursor=a&cursor=b", "?limit=2%", "?cursor=%ff"} {
				expectProblem(t, s.do("GET", path+q, token, nil), http.StatusBadRequest, "malformed_request")
			}
			expect(t, s.do("GET", path+"?limit=%35", token, nil), http.StatusOK)
		}
		for _, q := range []string{"?q=%", "?q=a&q=b", "?q=%c3"} {
			expectProblem(t, s.do("GET", "/api/v1/admin/users"+q, admin.Access, nil), http.StatusBadRequest, "malformed_request")
		}
		// Access comes first: a caller without it learns only that, whatever it sent.
		expectProblem(t, s.do("GET", "/api/v1/posts?cursor=%%%", "", nil), http.StatusUnauthorized, "unauthenticated")
		expectProblem(t, s.do("GET", "/api/v1/admin/users?cursor=%%%", a.Access, nil), http.StatusForbidden, "forbidden")

		// Routes that read no parameter hold the query string to the same rule (they used to
		// ignore it): reads, writes, which then write nothing, the probes and the documents.
		id := s.addPost(a.Access, "kept")
		for _, c := range []struct{ method, path, token string }{
			{"GET", "/api/v1/users/me", a.Access},
			{"GET", "/api/v1/posts/" + id, a.Access},
			{"DELETE", "/api/v1/posts/" + id, a.Access},
			{"POST", "/api/v1/posts", a.Access},
			{"GET", "/api/v1/api-keys", a.Access},
			{"GET", "/api/v1/admin/users/" + a.ID, admin.Access},
			{"GET", "/livez", ""},
			{"GET", "/readyz", ""},
			{"GET", "/openapi.json", ""},
			{"HEAD", "/api/v1/users/me", a.Access},
		} {
			for _, q := range []string{"?x=%%%", "?x=%zz", "?a=1;b=2"} {
				r := s.do(c.method, c.path+q, c.token, map[string]any{"text": "never stored"})
				if c.method == "HEAD" {
					if r.Status != http.StatusBadRequest {
						t.Errorf("HEAD %s%s: %d, want 400", c.path, q, r.Status)
					}
					continue
				}
				expectProblem(t, r, http.StatusBadRequest, "malformed_request")
			}
		}
		expect(t, s.do("GET", "/api/v1/posts/"+id, a.Access, nil), http.StatusOK)
		if p, list := s.list(a.Access, ""); len(p.Posts) != 2 {
			t.Fatalf("after refused writes the user has %d posts, want 2 (one, kept): %s", len(p.Posts), truncate(list.Body))
		}
	})
}

// TestInputForgedCursors: a cursor that decodes cleanly but to something no id of this
// service can be is 422 on every list endpoint, while real cursors page to the end.
func TestInputForgedCursors(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		a := s.signup(uniqueEmail("cursor"))
		for i := range 3 {
			s.addPost(a.Access, fmt.Sprint("post ", i))
		}
		s.signup(uniqueEmail("cursor"))
		enc := base64.RawURLEncoding.EncodeToString
		forged := []string{
			enc([]byte("zzzz")),
			enc([]byte("0b9f6c1e-8d7a-4a43-9a55-2f2f5d0b7c11")), // a UUIDv4
			enc([]byte(strings.ToUpper(a.ID))),
			enc([]byte(a.ID + "x")),
		}
		endpoints := map[string]string{"/api/v1/posts": a.Access, "/api/v1/admin/users": admin.Access}
		for path, token := range endpoints {
			for _, c := range forged {
				p := expectProblem(t, s.do("GET", path+"?cursor="+c, token, nil), http.StatusUnprocessableEntity, "validation_failed")
				if !strings.Contains(fmt.Sprint(p["errors"]), "cursor") {
					t.Fatalf("%s?cursor=%s: errors %v, want the cursor named", path, c, p["errors"])
				}
			}
			// Real cursors still work: page one item at a time to the end.
			seen, cursor := 0, ""
			for range 50 {
				q := "?limit=1"
				if cursor != "" {
					q += "&cursor=" + cursor
				}
				r := s.do("GET", path+q, token, nil)
				expect(t, r, http.StatusOK)
				m := r.JSON(t)
				seen++
				next, _ := m["next_cursor"].(string)
				if next == "" {
					break
				}
				cursor = next
			}
			if seen < 3 {
				t.Fatalf("%s: paged %d items with real cursors", path, seen)
			}
		}
	})
}

// TestInputEmailsAreOneUnicodeForm: "café" typed composed (U+00E9) and decomposed (e +
// U+0301) is one account in every operation; addresses with invisible or control
// characters, or over 254 bytes, are refused.
func TestInputEmailsAreOneUnicodeForm(t *testing.T) {
	forEachBackendWith(t, []string{"APP_THROTTLE_ACCOUNT_FAILURES=2"}, func(t *testing.T, s *server) {
		local := fmt.Sprintf("caf\u00e9-%d", time.Now().UnixNano())
		composed := local + "@example.io"
		decomposed := strings.Replace(composed, "\u00e9", "e\u0301", 1)
		pw := "correct horse battery"

		r := s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": decomposed, "password": pw})
		expect(t, r, http.StatusCreated)
		if got := r.JSON(t)["user"].(map[string]any)["email"]; got != composed {
			t.Fatalf("stored email %q, want the NFC form %q", got, composed)
		}
		expectProblem(t, s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": composed, "password": pw}), http.StatusConflict, "email_taken")
		expectProblem(t, s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": strings.ToUpper(composed), "password": pw}), http.StatusConflict, "email_taken")
		expect(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": composed, "password": pw}), http.StatusOK)
		expect(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": strings.ToUpper(decomposed), "password": pw}), http.StatusOK)

		// Case-insensitive means case folding: a final sigma and a capital sigma are one letter.
		sigma := fmt.Sprintf("οδυσσευς-%d@example.io", time.Now().UnixNano())
		expect(t, s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": sigma, "password": pw}), http.StatusCreated)
		expectProblem(t, s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": strings.ToUpper(sigma), "password": pw}), http.StatusConflict, "email_taken")
		expectProblem(t, s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": strings.Replace(sigma, "ς", "σ", 1), "password": pw}), http.StatusConflict, "email_taken")
		expect(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": strings.ToUpper(sigma), "password": pw}), http.StatusOK)

		// One failure budget per address, however it is spelled.
		expectProblem(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": decomposed, "password": "wrong guess 1"}), http.StatusUnauthorized, "invalid_credentials")
		expectProblem(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": composed, "password": "wrong guess 2"}), http.StatusUnauthorized, "invalid_credentials")
		expectProblem(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": decomposed, "password": pw}), http.StatusTooManyRequests, "too_many_attempts")

		for name, email := range map[string]string{
			"zero-width space":  "zero\u200bwidth@example.io",
			"zero-width joiner": "zero\u200dwidth@example.io",
			"bidi override":     "abc\u202e@example.io",
			"no-break space":    "no\u00a0break@example.io",
			"control":           "bell\u0007@example.io",
			"NUL":               "nul\u0000@example.io",
			"255 bytes":         strings.Repeat("\u00e9", 125) + "@x.io",
		} {
			p := expectProblem(t, s.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": email, "password": pw}), http.StatusUnprocessableEntity, "validation_failed")
			if !strings.Contains(fmt.Sprint(p["errors"]), "email") {
				t.Fatalf("%s: errors %v, want the email named", name, p["errors"])
			}
			if name == "255 bytes" && !strings.Contains(fmt.Sprint(p["detail"]), "bytes") {
				t.Fatalf("the length limit must say it counts bytes: %v", p["detail"])
			}
		}
	})
}

// TestInputJSONFieldNamesMatchExactly: "EMAIL" is an unknown field; it never overrides
// "email", whichever comes first.
func TestInputJSONFieldNamesMatchExactly(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		want, other := uniqueEmail("exact"), uniqueEmail("override")
		for _, body := range []string{
			`{"email":%q,"EMAIL":%q,"password":"correct horse battery"}`,
			`{"EMAIL":%[2]q,"email":%[1]q,"Password":"ignored","password":"correct horse battery"}`,
		} {
			r := s.do("POST", "/api/v1/auth/signup", "", fmt.Sprintf(body, want, other))
			if r.Status == http.StatusConflict {
				continue // the first body created it
			}
			expect(t, r, http.StatusCreated)
			if got := r.JSON(t)["user"].(map[string]any)["email"]; got != want {
				t.Fatalf("signed up %q, want %q", got, want)
			}
		}
		expectProblem(t, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": other, "password": "correct horse battery"}), http.StatusUnauthorized, "invalid_credentials")
		expectProblem(t, s.do("POST", "/api/v1/auth/signup", "", fmt.Sprintf(`{"email":%q,"email":%q,"password":"correct horse battery"}`, other, want)), http.StatusBadRequest, "malformed_request")
	})
}

// TestInputLoneSurrogates: a lone surrogate escape is 400 in posts and emails (and every
// other text field), never silently U+FFFD; a valid pair is one character.
func TestInputLoneSurrogates(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("surrogate"))
		bodies := []struct{ path, token, body string }{
			{"/api/v1/posts", a.Access, `{"text":"a\ud800b"}`},
			{"/api/v1/posts", a.Access, `{"text":"\udc00"}`},
			{"/api/v1/posts", a.Access, `{"text":"\ude00\ud83d"}`},
			{"/api/v1/auth/signup", "", `{"email":"x\ud800@example.io","password":"correct horse battery"}`},
			{"/api/v1/auth/login", "", `{"email":"x\ud800@example.io","password":"correct horse battery"}`},
			{"/api/v1/auth/signup", "", `{"email":"y@example.io","password":"correct horse battery","name":"\udbff"}`},
			{"/api/v1/auth/refresh", "", `{"refresh_token":"\ud800"}`},
		}
		for _, b := range bodies {
			p := expectProblem(t, s.do("POST", b.path, b.token, b.body), http.StatusBadRequest, "malformed_request")
			if !strings.Contains(fmt.Sprint(p["detail"]), "Unicode") {
				t.Fatalf("POST %s %s: detail %v", b.path, b.body, p["detail"])
			}
		}
		r := s.do("PATCH", "/api/v1/users/me", a.Access, `{"name":"\ud800"}`)
		expectProblem(t, r, http.StatusBadRequest, "malformed_request")

		r = s.do("POST", "/api/v1/posts", a.Access, `{"text":"smile \ud83d\ude00"}`)
		expect(t, r, http.StatusCreated)
		if got := r.JSON(t)["text"]; got != "smile \U0001F600" {
			t.Fatalf("text %q, want the pair decoded to one character", got)
		}
		r = s.do("GET", "/api/v1/posts", a.Access, nil)
		if !bytes.Contains(r.Body, []byte("smile \U0001F600")) || bytes.Contains(r.Body, []byte("\uFFFD")) {
			t.Fatalf("list: %s", truncate(r.Body))
		}
	})
}

// TestInputNullIsAWrongType: null where the contract wants a string is a value of the wrong
// JSON type, 400 naming the field, on every endpoint, as the contract says of ECG samples. It
// used to read as a missing field on some (422) and as the wrong type on others (400).
func TestInputNullIsAWrongType(t *testing.T) {
	forEachBackendWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		a := s.signup(uniqueEmail("nulls"))
		for _, c := range []struct{ method, path, token, body, field string }{
			{"POST", "/api/v1/auth/signup", "", `{"email":null,"password":"correct horse battery"}`, "email"},
			{"POST", "/api/v1/auth/login", "", `{"email":"` + a.Email + `","password":null}`, "password"},
			{"POST", "/api/v1/auth/refresh", "", `{"refresh_token":null}`, "refresh_token"},
			{"POST", "/api/v1/posts", a.Access, `{"text":null}`, "text"},
			{"POST", "/api/v1/api-keys", a.Access, `{"name":null}`, "name"},
			{"PATCH", "/api/v1/users/me", a.Access, `{"name":null}`, "name"},
			{"POST", "/api/v1/admin/users", admin.Access, `{"email":"n@x.io","password":null,"role":"user"}`, "password"},
		} {
			p := expectProblem(t, s.do(c.method, c.path, c.token, c.body), http.StatusBadRequest, "malformed_request")
			if d := fmt.Sprint(p["detail"]); !strings.Contains(d, `"`+c.field+`"`) {
				t.Errorf("%s %s with %s: detail %q does not name %s", c.method, c.path, c.body, d, c.field)
			}
		}
		if p, list := s.list(a.Access, ""); len(p.Posts) != 0 {
			t.Fatalf("a refused post was stored: %s", truncate(list.Body))
		}
	})
}

// TestRefusalsBeforeTheBodyAnswerAtOnce: a request refused without its body being read (no
// token, a bad token, the wrong content type, an unknown route) is answered at once even when
// its client sends the body slowly or not at all, and the connection is closed. Before,
// net/http read the rest of the body before it wrote the answer, so the refusal came at the
// read timeout (60 s), or the connection closed with no answer at all.
func TestRefusalsBeforeTheBodyAnswerAtOnce(t *testing.T) {
	s := startServer(t, backends()[0].env(t))
	for _, c := range []struct {
		name, head string
		status     int
	}{
		{"no token", "POST /api/v1/posts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n", 401},
		{"a bad token", "POST /api/v1/posts HTTP/1.1\r\nAuthorization: Bearer abc\r\nContent-Type: application/json\r\nContent-Length: 100\r\n", 401},
		{"chunked, no token", "POST /api/v1/posts HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n", 401},
		{"text/plain login", "POST /api/v1/auth/login HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n", 415},
		{"an unknown route", "POST /api/v1/nowhere HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n", 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			body := `{"te`
			if strings.Contains(c.head, "chunked") {
				body = "4\r\n" + body + "\r\n"
			}
			if _, err := io.WriteString(conn, c.head+"Host: x\r\n\r\n"+body); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			start := time.Now()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer within %s while the body stalls: %v", time.Since(start).Round(time.Millisecond), err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != c.status || !resp.Close {
				t.Fatalf("answer %d (Connection: close %v), want %d and the connection closed", resp.StatusCode, resp.Close, c.status)
			}
		})
	}
}

// TestInputByteOrderMarksAreNamed: a JSON body that starts with a byte order mark (as
// PowerShell and editors saving "UTF-8 with BOM" write it) is 400 with a detail that says so,
// the same from the kernel's decoder and the ECG upload's, and a UTF-16 body is 400 for not
// being UTF-8 on both. Before, the mark was answered "The request body must be a JSON object."
// (and UTF-16 likewise by the ECG upload), which sent the client looking for a brace that is
// there.
func TestInputByteOrderMarksAreNamed(t *testing.T) {
	forEachBackendWith(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("bom"))
		ecgBody := `{"id":"bom","date":"2026-01-01T00:00:00Z","leads":[{"name":"I","signal":[1,2]}]}`
		var details []string
		for _, c := range []struct{ path, token, body string }{
			{"/api/v1/posts", a.Access, "\ufeff" + `{"text":"hello"}`},
			{"/api/v1/auth/login", "", "\ufeff" + `{"email":"` + a.Email + `","password":"` + a.Password + `"}`},
			{"/api/v1/ecgs", a.Access, "\ufeff" + ecgBody},
		} {
			p := expectProblem(t, s.do("POST", c.path, c.token, c.body), http.StatusBadRequest, "malformed_request")
			d := fmt.Sprint(p["detail"])
			if !strings.Contains(d, "byte order mark") {
				t.Errorf("POST %s with a byte order mark: detail %q does not name it", c.path, d)
			}
			details = append(details, d)
		}
		if details[0] != details[2] {
			t.Errorf("posts and ECGs name the byte order mark differently: %q, %q", details[0], details[2])
		}
		utf16 := func(s string) string {
			b := []byte{0xff, 0xfe}
			for _, r := range s {
				b = append(b, byte(r), byte(r>>8))
			}
			return string(b)
		}
		for _, c := range []struct{ path, body string }{
			{"/api/v1/posts", utf16(`{"text":"hello"}`)},
			{"/api/v1/ecgs", utf16(ecgBody)},
		} {
			p := expectProblem(t, s.do("POST", c.path, a.Access, c.body), http.StatusBadRequest, "malformed_request")
			if d := fmt.Sprint(p["detail"]); !strings.Contains(d, "valid UTF-8") {
				t.Errorf("POST %s in UTF-16: detail %q, want it to say the body must be valid UTF-8", c.path, d)
			}
		}
		if p, list := s.list(a.Access, ""); len(p.Posts) != 0 {
			t.Fatalf("a refused post was stored: %s", truncate(list.Body))
		}
	})
}

// TestInputRequestsNetHTTPRefusesAreProblems: the requests Go's HTTP server refuses before any
// handler runs are answered like every other error, on the API's listener and on the
// operations listener: a problem document with its status and code, X-Request-ID, and the
// connection closed; OPTIONS * reaches the API's router. Before, each got net/http's plain
// text without X-Request-ID (OPTIONS *: an empty 200).
func TestInputRequestsNetHTTPRefusesAreProblems(t *testing.T) {
	opsPort := freePort(t)
	s := startServer(t, backends()[0].env(t), "APP_HTTP_OPS_ADDR=127.0.0.1:"+opsPort)
	for _, addr := range []string{strings.TrimPrefix(s.base, "http://"), "127.0.0.1:" + opsPort} {
		for _, c := range []struct {
			name, raw, code string
			status          int
		}{
			{"a 100,000-character query", "GET /api/v1/posts?cursor=" + strings.Repeat("a", 100_000) + " HTTP/1.1\r\nHost: x\r\n\r\n", "headers_too_large", 431},
			{"a header line without a colon", "GET /livez HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n", "malformed_request", 400},
			{"a control byte in a header", "GET /livez HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", "malformed_request", 400},
			{"no Host", "GET /livez HTTP/1.1\r\n\r\n", "malformed_request", 400},
			{"Transfer-Encoding: gzip", "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "unsupported_transfer_encoding", 501},
			{"HTTP/3.0", "GET /livez HTTP/3.0\r\nHost: x\r\n\r\n", "http_version_not_supported", 505},
			{"Expect: magic", "GET /livez HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", "expectation_failed", 417},
			{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "not_found", 404},
		} {
			if c.name == "OPTIONS *" && !strings.HasSuffix(s.base, addr) {
				continue // the operations listener's mux answers paths it does not serve itself
			}
			t.Run(addr+" "+c.name, func(t *testing.T) {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = conn.Close() }()
				if _, err := io.WriteString(conn, c.raw); err != nil {
					t.Fatal(err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				r := response{Status: resp.StatusCode, Header: resp.Header, Body: body}
				expectProblem(t, r, c.status, c.code)
				if id := resp.Header.Get("X-Request-ID"); id == "" || !resp.Close {
					t.Fatalf("X-Request-ID %q, Connection: close %v; want an id and the connection closed", id, resp.Close)
				}
			})
		}
	}
}

// TestInputConnectionsPastTheCapAreOverloaded: with APP_HTTP_MAX_CONNECTIONS connections held
// open (idle keep-alive ones), the real server answers one more at once with 503 overloaded,
// Retry-After and X-Request-ID and closes it, and goes on serving the connections it holds.
// Before, every connection was accepted, however many: a client opening them faster than they
// time out grew the process without bound.
func TestInputConnectionsPastTheCapAreOverloaded(t *testing.T) {
	const limit = 3
	s := startServer(t, backends()[0].env(t), fmt.Sprintf("APP_HTTP_MAX_CONNECTIONS=%d", limit))
	addr := strings.TrimPrefix(s.base, "http://")
	get := func(conn net.Conn, r *bufio.Reader, extra string) response {
		t.Helper()
		if _, err := io.WriteString(conn, "GET /livez HTTP/1.1\r\nHost: x\r\n"+extra+"\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	}
	type held struct {
		conn net.Conn
		r    *bufio.Reader
	}
	var open []held
	for waits := 0; len(open) < limit; {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		h := held{conn, bufio.NewReader(conn)}
		r := get(h.conn, h.r, "")
		if r.Status == http.StatusServiceUnavailable && len(open) == limit-1 && waits < 250 {
			waits++
			// The start-up's readiness probe closed its connection a moment ago; the server
			// gives its slot back once it has read the close.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		expect(t, r, http.StatusOK)
		open = append(open, h)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	r := get(conn, bufio.NewReader(conn), "")
	expectProblem(t, r, http.StatusServiceUnavailable, "overloaded")
	if r.Header.Get("Retry-After") == "" || r.Header.Get("X-Request-ID") == "" {
		t.Fatalf("the refusal's headers %v lack Retry-After or X-Request-ID", r.Header)
	}
	for _, h := range open {
		expect(t, get(h.conn, h.r, ""), http.StatusOK)
	}
	// /metrics, read on a held connection, counts the refusal and the connections held.
	if _, err := io.WriteString(open[0].conn, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(open[0].r, nil)
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{"postsvc_http_connections_refused_total 1\n", fmt.Sprintf("postsvc_http_open_connections %d\n", limit)} {
		if !strings.Contains(string(scrape), want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
}
