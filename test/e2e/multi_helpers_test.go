package e2e

// Helpers of the multi-instance suite (multi_instance_test.go): three server processes on one
// database (and one Redis prefix), a client that spreads requests over them and counts them,
// and a recorder of request sequences that is safe to run from many goroutines at once.

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clusterSize is the number of instances the suite runs.
const clusterSize = 3

// cluster is a set of server processes sharing one database (and, with Redis, one prefix).
type cluster struct {
	nodes  []*server
	client *http.Client
	admin  account
	// driving is the time spent sending requests, for the rate the suite reports.
	requests atomic.Int64
	driving  atomic.Int64
	rr       atomic.Uint64
	// deleted counts the users deleted through the admin API, each of which enqueues one
	// cleanup job.
	deleted atomic.Int64
	// addrSeq numbers the client addresses (X-Forwarded-For) of the signups.
	addrSeq atomic.Int64
}

// startCluster starts clusterSize servers with the same backend settings (one database, one
// Redis prefix), one JWT secret (each would otherwise generate its own in its data folder),
// fast hashing, the loopback trusted as a proxy (so each request can name its
// client address) and the same bootstrap admin settings, as a deployment would give every
// instance; only the first start finds no admin and creates it. The admin is logged in.
func startCluster(t *testing.T, backendEnv []string, extra ...string) *cluster {
	t.Helper()
	email := uniqueEmail("root")
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	env := withFastHashing(append([]string{
		"APP_AUTH_JWT_SECRET=" + hex.EncodeToString(secret),
		"APP_BOOTSTRAP_ADMIN_EMAIL=" + email, "APP_BOOTSTRAP_ADMIN_PASSWORD=" + adminPassword,
		"APP_HTTP_TRUSTED_PROXIES=127.0.0.1/32",
	}, extra...)...)
	c := &cluster{client: &http.Client{Transport: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
	}}}
	t.Cleanup(c.client.CloseIdleConnections)
	for range clusterSize {
		c.nodes = append(c.nodes, startServer(t, backendEnv, env...))
	}
	c.admin = c.nodes[0].loginAs(email, adminPassword)
	// Three starts with the bootstrap settings made one admin.
	admins := 0
	for _, u := range c.nodes[1].directory(c.admin.Access, email, 0) {
		if u.Role == "admin" {
			admins++
		}
	}
	if admins != 1 {
		t.Fatalf("%d admins with the bootstrap email after %d starts, want 1", admins, clusterSize)
	}
	return c
}

// name names instance i in messages.
func (c *cluster) name(i int) string { return "instance " + strconv.Itoa(i) }

// next returns the instance the round robin gives the next request.
func (c *cluster) next() int { return int(c.rr.Add(1) % clusterSize) }

// order returns every instance, those other than a first and a last.
func order(a int) []int { return []int{(a + 1) % clusterSize, (a + 2) % clusterSize, a} }

// others returns the instances other than a.
func others(a int) []int { return []int{(a + 1) % clusterSize, (a + 2) % clusterSize} }

// call sends one request to instance i; safe from any goroutine. body is nil, a []byte (sent
// as is) or a value sent as JSON. A transport failure is returned, never fatal; the response is
// validated against the OpenAPI document like every response of the suite.
func (c *cluster) call(i int, method, path, token string, body any, headers map[string]string) (response, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		r = bytes.NewReader(enc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.requests.Add(1)
	resp, err := c.nodes[i].try(ctx, c.client, method, path, token, r, headers)
	if err != nil {
		return resp, fmt.Errorf("%s %s on %s: %w", method, path, c.name(i), err)
	}
	return resp, nil
}

// nextAddr returns a client address no other request of the suite names.
func (c *cluster) nextAddr() string {
	n := c.addrSeq.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", (n>>16)&255, (n>>8)&255, n&255)
}

// drive runs fn and adds its duration to the time spent driving requests.
func (c *cluster) drive(fn func()) time.Duration {
	start := time.Now()
	fn()
	d := time.Since(start)
	c.driving.Add(int64(d))
	return d
}

// metrics reads /metrics of every instance.
func (c *cluster) metrics() ([]string, error) {
	out := make([]string, clusterSize)
	for i := range clusterSize {
		r, err := c.call(i, "GET", "/metrics", "", nil, nil)
		if err != nil {
			return nil, err
		}
		if r.Status != http.StatusOK {
			return nil, fmt.Errorf("/metrics on %s: status %d", c.name(i), r.Status)
		}
		out[i] = string(r.Body)
	}
	return out, nil
}

// perInstance returns one series' value on each instance (0 where it is absent) and their sum.
func perInstance(texts []string, series string) (each []float64, sum float64) {
	for _, text := range texts {
		v, _ := metricValue(text, series)
		each = append(each, v)
		sum += v
	}
	return each, sum
}

// openDB opens the cluster's database, closed when the test ends.
func (c *cluster) openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", envValue(c.nodes[0].env, "APP_DATABASE_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// steps runs a sequence of requests and keeps the first failure: once one step failed, the
// following ones are skipped (they would use what it did not give). Safe to use one per
// goroutine.
type steps struct {
	c    *cluster
	what string
	err  error
}

func (c *cluster) steps(what string) *steps { return &steps{c: c, what: what} }

// fail records a failure unless one is recorded already.
func (s *steps) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("%s: %s", s.what, fmt.Sprintf(format, args...))
	}
}

// want sends a request to instance i and records a failure unless it is answered status, and,
// when code is not empty, a problem document with that code.
func (s *steps) want(why string, i int, method, path, token string, body any, status int, code string) response {
	return s.wantWith(why, i, method, path, token, body, nil, status, code)
}

func (s *steps) wantWith(why string, i int, method, path, token string, body any, headers map[string]string, status int, code string) response {
	if s.err != nil {
		return response{}
	}
	r, err := s.c.call(i, method, path, token, body, headers)
	if err != nil {
		s.fail("%s: %v", why, err)
		return r
	}
	if got := problemCode(r); r.Status != status || (code != "" && got != code) {
		s.fail("%s: %s %s on %s: status %d (code %q), want %d %s: %s", why, method, path, s.c.name(i), r.Status, got, status, code, truncate(r.Body))
	}
	return r
}

// problemCode returns the code of a problem document, or "".
func problemCode(r response) string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(r.Body, &p)
	return p.Code
}

// decode reads a JSON body into v.
func (s *steps) decode(r response, v any) {
	if s.err != nil {
		return
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		s.fail("decoding %s: %v", truncate(r.Body), err)
	}
}

// session reads a session answer.
func (s *steps) session(r response) account {
	var m struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
		User    struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"user"`
	}
	s.decode(r, &m)
	if s.err == nil && (m.Access == "" || m.Refresh == "" || m.User.ID == "") {
		s.fail("incomplete session: %s", truncate(r.Body))
	}
	return account{Email: m.User.Email, Password: "correct horse battery", Access: m.Access, Refresh: m.Refresh, ID: m.User.ID}
}

// signup signs a new user up on instance i, from a client address of its own (so that the
// signup throttle of the suite's small limits is never reached by the revocation checks). A
// signup shed with 503 overloaded while the hasher is busy is sent again.
func (s *steps) signup(i int) account {
	if s.err != nil {
		return account{}
	}
	body := map[string]any{"email": uniqueEmail("multi"), "password": "correct horse battery"}
	headers := map[string]string{"X-Forwarded-For": s.c.nextAddr()}
	for range 50 {
		r, err := s.c.call(i, "POST", "/api/v1/auth/signup", "", body, headers)
		if err == nil && r.Status == http.StatusServiceUnavailable && problemCode(r) == "overloaded" {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err != nil {
			s.fail("signup: %v", err)
			return account{}
		}
		if r.Status != http.StatusCreated {
			s.fail("signup on %s: status %d: %s", s.c.name(i), r.Status, truncate(r.Body))
			return account{}
		}
		return s.session(r)
	}
	s.fail("signup on %s: still shed after 50 tries", s.c.name(i))
	return account{}
}

// createKey makes a personal API key on instance i.
func (s *steps) createKey(i int, token string) apiKey {
	r := s.want("create an API key", i, "POST", "/api/v1/api-keys", token, map[string]any{"name": "multi"}, http.StatusCreated, "")
	var k apiKey
	s.decode(r, &k)
	if s.err == nil && (k.ID == "" || k.Key == "") {
		s.fail("created key without id or secret: %s", truncate(r.Body))
	}
	return k
}

// addPost adds a post on instance i and returns its id.
func (s *steps) addPost(i int, token, text string) string {
	r := s.want("add a post", i, "POST", "/api/v1/posts", token, map[string]any{"text": text}, http.StatusCreated, "")
	var p struct {
		ID string `json:"id"`
	}
	s.decode(r, &p)
	return p.ID
}

// list reads the first page of the caller's posts on instance i and records a failure unless
// it holds exactly the posts want, newest first. cache, when not empty, is the X-Cache value
// the answer must carry.
func (s *steps) list(why string, i int, token string, cache string, want ...string) {
	r := s.want(why, i, "GET", "/api/v1/posts", token, nil, http.StatusOK, "")
	var p page
	s.decode(r, &p)
	if s.err != nil {
		return
	}
	got := make([]string, 0, len(p.Posts))
	for _, post := range p.Posts {
		got = append(got, post.ID)
	}
	if !slices.Equal(got, want) {
		s.fail("%s: the list on %s holds %v, want %v (X-Cache %s)", why, s.c.name(i), got, want, r.Header.Get("X-Cache"))
		return
	}
	if x := r.Header.Get("X-Cache"); cache != "" && x != cache {
		s.fail("%s: the list on %s was X-Cache %q, want %q", why, s.c.name(i), x, cache)
	}
}

// outcomes counts the answers of throttled attempts by status and code.
type outcomes map[string]int

func (o outcomes) add(r response) { o[strconv.Itoa(r.Status)+" "+problemCode(r)]++ }

// unexpected returns an error naming the outcomes not in allowed.
func (o outcomes) unexpected(allowed ...string) error {
	var errs []error
	for k, n := range o {
		if !slices.Contains(allowed, k) {
			errs = append(errs, fmt.Errorf("%d answered %q", n, k))
		}
	}
	return errors.Join(errs...)
}

// stormAfter is how many probes each instance must answer, started after the revoking call
// was answered, before a storm ends.
const stormAfter = 3

// revoke makes the revoking call (call, which records its own failure in s). With storm, the
// instances in targets are probed at the same time, each by a goroutine that sends probe in a
// loop from before the call is sent (each has been answered once before it is) until it has
// answered stormAfter probes that started after the call was answered: those must all show
// the change (as seen says), while a probe that started earlier may get either answer. So
// credentials are being read and cached on every instance while the revocation commits and
// is published, and a read that straddles it cannot leave a stale principal or page behind.
// Without storm, revoke only makes the call.
func (s *steps) revoke(storm bool, targets []int, probe func(i int) (response, error), seen func(r response) bool, call func()) {
	if !storm || s.err != nil {
		call()
		return
	}
	var (
		answered atomic.Pointer[time.Time]
		stop     atomic.Bool
		mu       sync.Mutex
		errs     []error
		ready    sync.WaitGroup
		wg       sync.WaitGroup
		straddle atomic.Int64
	)
	record := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	ready.Add(len(targets))
	for _, i := range targets {
		wg.Go(func() {
			signalled := false
			defer func() {
				if !signalled {
					ready.Done()
				}
			}()
			after := 0
			for n := 0; n < 10000 && !stop.Load(); n++ {
				start := time.Now()
				r, err := probe(i)
				if !signalled {
					signalled = true
					ready.Done()
				}
				if err != nil {
					record(err)
					return
				}
				at := answered.Load()
				if at == nil || !start.After(*at) {
					if at != nil {
						straddle.Add(1)
					}
					continue
				}
				if !seen(r) {
					record(fmt.Errorf("a request that started %s after the revoking call was answered, on %s, did not see it: status %d (X-Cache %q): %s",
						start.Sub(*at), s.c.name(i), r.Status, r.Header.Get("X-Cache"), truncate(r.Body)))
					return
				}
				if after++; after >= stormAfter {
					return
				}
			}
		})
	}
	ready.Wait()
	call()
	now := time.Now()
	answered.Store(&now)
	if s.err != nil {
		stop.Store(true)
	}
	wg.Wait()
	if len(errs) > 0 {
		s.fail("storm: %v", errors.Join(errs...))
	}
}

// status returns a predicate true of answers with that status and, when code is not empty,
// that problem code.
func status(want int, code string) func(r response) bool {
	return func(r response) bool { return r.Status == want && (code == "" || problemCode(r) == code) }
}

// listHas returns a predicate true of a 200 list whose posts include id (or exclude it, with
// has false).
func listHas(id string, has bool) func(r response) bool {
	return func(r response) bool {
		var p page
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &p) != nil {
			return false
		}
		found := false
		for _, post := range p.Posts {
			found = found || post.ID == id
		}
		return found == has
	}
}

// get returns a probe that sends GET path with token.
func (c *cluster) get(path, token string) func(i int) (response, error) {
	return func(i int) (response, error) { return c.call(i, "GET", path, token, nil, nil) }
}

// postCount returns a predicate true of a 200 list of exactly n posts.
func postCount(n int) func(r response) bool {
	return func(r response) bool {
		var p page
		return r.Status == http.StatusOK && json.Unmarshal(r.Body, &p) == nil && len(p.Posts) == n
	}
}
