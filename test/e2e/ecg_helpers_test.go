package e2e

// Helpers of the ECG end-to-end tests (ecg_test.go, ecg_kill_test.go): upload bodies made
// from known samples, the insights those samples must give (computed here, independently of
// the service, from the contract's definitions), requests that are safe to send from many
// goroutines at once, and direct reads of the test database.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", to read the server's SQLite file
)

// ecgLead is one lead of an upload.
type ecgLead struct {
	Name string
	// Samples is sent as "samples" when it is not 0.
	Samples int
	Signal  []int32
}

// ecgUpload is an upload body: what the client sends, and what it must get back.
type ecgUpload struct {
	// ID is sent as "id" when it is not empty.
	ID    string
	Date  string
	Leads []ecgLead
}

// ecgDate is the recording date of the generated uploads.
const ecgDate = "2024-05-01T09:30:00Z"

// standardLeadNames are the names of a 12-lead ECG.
var standardLeadNames = []string{"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"}

// ecgLeadName names the lead at position i: the 12 standard names, then X13, X14, ...
func ecgLeadName(i int) string {
	if i < len(standardLeadNames) {
		return standardLeadNames[i]
	}
	return "X" + strconv.Itoa(i+1)
}

// ecgSignal returns n samples that exercise the measures: a random walk within ±5000 that
// often drops to zero (so zero runs sit between samples of both signs) and sometimes flips
// sign. The same arguments give the same samples.
func ecgSignal(seed uint64, n int) []int32 {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]int32, n)
	var v int32
	for i := range out {
		switch r := rng.IntN(100); {
		case r < 8:
			v = 0
		case r < 11:
			v = -v
		default:
			v += int32(rng.IntN(401) - 200)
		}
		v = max(-5000, min(5000, v))
		out[i] = v
	}
	return out
}

// makeECG returns an upload of leads leads of samples samples each, all different, with
// "samples" sent for every other lead. Its first lead holds both ends of the int32 range.
func makeECG(id string, leads, samples int, seed uint64) ecgUpload {
	u := ecgUpload{ID: id, Date: ecgDate, Leads: make([]ecgLead, leads)}
	for i := range u.Leads {
		sig := ecgSignal(seed*1000+uint64(i), samples)
		if i == 0 && samples >= 4 {
			sig[1], sig[samples-2] = math.MinInt32, math.MaxInt32
		}
		u.Leads[i] = ecgLead{Name: ecgLeadName(i), Signal: sig}
		if i%2 == 0 {
			u.Leads[i].Samples = samples
		}
	}
	return u
}

// JSON is the body a client sends: compact, members in the contract's order.
func (u ecgUpload) JSON() []byte {
	size := 64
	for _, l := range u.Leads {
		size += 64 + 12*len(l.Signal)
	}
	b := make([]byte, 0, size)
	b = append(b, '{')
	if u.ID != "" {
		b = append(b, `"id":`...)
		b = appendJSONString(b, u.ID)
		b = append(b, ',')
	}
	b = append(b, `"date":`...)
	b = appendJSONString(b, u.Date)
	b = append(b, `,"leads":[`...)
	for i, l := range u.Leads {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, l.Name)
		if l.Samples != 0 {
			b = append(b, `,"samples":`...)
			b = strconv.AppendInt(b, int64(l.Samples), 10)
		}
		b = append(b, `,"signal":[`...)
		for j, v := range l.Signal {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(v), 10)
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}

func appendJSONString(b []byte, s string) []byte {
	enc, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return append(b, enc...)
}

// leadStats are a lead's measures by the contract's definitions.
type leadStats struct {
	ZeroCrossings, Min, Max, Sum int64
	N                            int
}

// statsOf measures samples: sign changes between consecutive non-zero samples (zeros are
// skipped, both directions count), the extremes and the exact sum.
func statsOf(samples []int32) leadStats {
	s := leadStats{Min: math.MaxInt64, Max: math.MinInt64, N: len(samples)}
	prevSign := 0
	for _, v := range samples {
		s.Sum += int64(v)
		s.Min = min(s.Min, int64(v))
		s.Max = max(s.Max, int64(v))
		sign := 0
		switch {
		case v > 0:
			sign = 1
		case v < 0:
			sign = -1
		}
		if sign == 0 {
			continue
		}
		if prevSign != 0 && sign != prevSign {
			s.ZeroCrossings++
		}
		prevSign = sign
	}
	return s
}

// ecgSummary is an upload's answer and a list item.
type ecgSummary struct {
	ID    string `json:"id"`
	Date  string `json:"date"`
	Leads []struct {
		Name    string `json:"name"`
		Samples int    `json:"samples"`
	} `json:"leads"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
}

// checkSummary compares a summary with the upload it describes (the id only when the upload
// named one).
func checkSummary(u ecgUpload, s ecgSummary) error {
	if u.ID != "" && s.ID != u.ID {
		return fmt.Errorf("summary id %q, want %q", s.ID, u.ID)
	}
	want, err := time.Parse(time.RFC3339Nano, u.Date)
	if err != nil {
		return err
	}
	got, err := time.Parse(time.RFC3339Nano, s.Date)
	if err != nil || !got.Equal(want) || !strings.HasSuffix(s.Date, "Z") {
		return fmt.Errorf("summary date %q, want %s in UTC", s.Date, u.Date)
	}
	if _, err := time.Parse(time.RFC3339Nano, s.CreatedAt); err != nil || !strings.HasSuffix(s.CreatedAt, "Z") {
		return fmt.Errorf("summary created_at %q is not an RFC 3339 UTC time", s.CreatedAt)
	}
	if len(s.Leads) != len(u.Leads) {
		return fmt.Errorf("summary has %d leads, want %d", len(s.Leads), len(u.Leads))
	}
	for i, l := range u.Leads {
		if s.Leads[i].Name != l.Name || s.Leads[i].Samples != len(l.Signal) {
			return fmt.Errorf("summary lead %d is %s/%d, want %s/%d", i, s.Leads[i].Name, s.Leads[i].Samples, l.Name, len(l.Signal))
		}
	}
	switch s.Status {
	case "pending", "done", "failed":
	default:
		return fmt.Errorf("summary status %q", s.Status)
	}
	return nil
}

func decodeSummary(body []byte) (ecgSummary, error) {
	var s ecgSummary
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("summary: %w: %s", err, truncate(body))
	}
	return s, nil
}

// ecgInsights is the answer of GET /ecgs/{id}/insights, numbers kept as their text.
type ecgInsights struct {
	ECGID      string                       `json:"ecg_id"`
	Status     string                       `json:"status"`
	Leads      []map[string]json.RawMessage `json:"leads"`
	AnalysedAt *string                      `json:"analysed_at"`
	Error      string                       `json:"error"`
}

func decodeInsights(body []byte) (ecgInsights, error) {
	var in ecgInsights
	if err := json.Unmarshal(body, &in); err != nil {
		return in, fmt.Errorf("insights: %w: %s", err, truncate(body))
	}
	return in, nil
}

// analysedAt is the insights' analysed_at, or the zero time when it is null or unreadable.
func (in ecgInsights) analysedAt() time.Time {
	if in.AnalysedAt == nil {
		return time.Time{}
	}
	at, _ := time.Parse(time.RFC3339Nano, *in.AnalysedAt)
	return at
}

// checkInsights compares done insights with the measures of the upload's samples, computed
// here: the counts and extremes exactly, the mean to the contract's three decimal places.
func checkInsights(u ecgUpload, id string, in ecgInsights) error {
	if in.ECGID != id || in.Status != "done" {
		return fmt.Errorf("insights of %q: ecg_id %q, status %q (error %q)", id, in.ECGID, in.Status, in.Error)
	}
	if in.analysedAt().IsZero() || !strings.HasSuffix(*in.AnalysedAt, "Z") {
		return fmt.Errorf("insights of %q: analysed_at %v is not an RFC 3339 UTC time", id, in.AnalysedAt)
	}
	if len(in.Leads) != len(u.Leads) {
		return fmt.Errorf("insights of %q: %d leads, want %d", id, len(in.Leads), len(u.Leads))
	}
	for i, l := range u.Leads {
		got := in.Leads[i]
		var name string
		if err := json.Unmarshal(got["name"], &name); err != nil || name != l.Name {
			return fmt.Errorf("insights of %q: lead %d is named %s, want %q (upload order)", id, i, got["name"], l.Name)
		}
		want := statsOf(l.Signal)
		for measure, v := range map[string]int64{"zero_crossings": want.ZeroCrossings, "min": want.Min, "max": want.Max} {
			n, err := strconv.ParseInt(string(got[measure]), 10, 64)
			if err != nil || n != v {
				return fmt.Errorf("insights of %q: lead %s %s = %s, want the integer %d", id, l.Name, measure, got[measure], v)
			}
		}
		mean, err := strconv.ParseFloat(string(got["mean"]), 64)
		exact := float64(want.Sum) / float64(want.N)
		if err != nil || math.Abs(mean-exact) >= 0.0005 {
			return fmt.Errorf("insights of %q: lead %s mean = %s, want %.6f to three decimal places", id, l.Name, got["mean"], exact)
		}
	}
	return nil
}

// ecgDoc is GET /ecgs/{id}: the ECG with its signals.
type ecgDoc struct {
	ID        string `json:"id"`
	Date      string `json:"date"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
	Leads     []struct {
		Name    string  `json:"name"`
		Samples int     `json:"samples"`
		Signal  []int32 `json:"signal"`
	} `json:"leads"`
}

// checkDoc compares GET /ecgs/{id} with the upload: the same leads in order, each with
// exactly the uploaded samples.
func checkDoc(u ecgUpload, id string, body []byte) (ecgDoc, error) {
	var d ecgDoc
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("GET ECG %q: %w: %s", id, err, truncate(body))
	}
	if d.ID != id {
		return d, fmt.Errorf("GET ECG %q: id %q", id, d.ID)
	}
	want, _ := time.Parse(time.RFC3339Nano, u.Date)
	if got, err := time.Parse(time.RFC3339Nano, d.Date); err != nil || !got.Equal(want) || !strings.HasSuffix(d.Date, "Z") {
		return d, fmt.Errorf("GET ECG %q: date %q, want %s in UTC", id, d.Date, u.Date)
	}
	if len(d.Leads) != len(u.Leads) {
		return d, fmt.Errorf("GET ECG %q: %d leads, want %d", id, len(d.Leads), len(u.Leads))
	}
	for i, l := range u.Leads {
		got := d.Leads[i]
		if got.Name != l.Name || got.Samples != len(l.Signal) || !slices.Equal(got.Signal, l.Signal) {
			first := -1
			for j := range min(len(got.Signal), len(l.Signal)) {
				if got.Signal[j] != l.Signal[j] {
					first = j
					break
				}
			}
			return d, fmt.Errorf("GET ECG %q: lead %d is %q with samples=%d and %d samples (first difference at %d), want %q with %d",
				id, i, got.Name, got.Samples, len(got.Signal), first, l.Name, len(l.Signal))
		}
	}
	return d, nil
}

// validateLimit is the largest response that try checks against the OpenAPI document: the
// signals of a large ECG take kin-openapi far longer to check than the service to send.
const validateLimit = 1 << 20

// try sends a request like (*server).do, but is safe to call from any goroutine: a transport
// failure is returned, never fatal. The response is checked against the document as do
// checks it, up to validateLimit bytes.
func (s *server) try(ctx context.Context, client *http.Client, method, path, token string, body io.Reader, headers map[string]string) (response, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	if len(data) <= validateLimit {
		responseHook(s, req, r)
	}
	return r, nil
}

// ecgPath is the path of an ECG, or of one of its sub-resources.
func ecgPath(id string, sub ...string) string {
	return "/api/v1/ecgs/" + url.PathEscape(id) + strings.Join(sub, "")
}

// upload posts u and fails the test unless it is answered with status; it returns the
// summary of a 200 or 202.
func (s *server) uploadECG(token string, u ecgUpload, status int) (ecgSummary, response) {
	s.t.Helper()
	r := s.do("POST", "/api/v1/ecgs", token, u.JSON())
	expect(s.t, r, status)
	if status != http.StatusOK && status != http.StatusAccepted {
		return ecgSummary{}, r
	}
	sum, err := decodeSummary(r.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := checkSummary(u, sum); err != nil {
		s.t.Fatal(err)
	}
	if loc := r.Header.Get("Location"); loc != ecgPath(sum.ID) {
		s.t.Fatalf("Location %q, want %q", loc, ecgPath(sum.ID))
	}
	return sum, r
}

// waitInsights polls the insights of an ECG every 25 ms until its status is no longer
// pending, and returns them; it fails after within. Safe from any goroutine.
func (s *server) waitInsights(token, id string, within time.Duration) (ecgInsights, error) {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := s.try(ctx, nil, "GET", ecgPath(id, "/insights"), token, nil, nil)
		cancel()
		if err != nil {
			return ecgInsights{}, err
		}
		if r.Status != http.StatusOK {
			return ecgInsights{}, fmt.Errorf("insights of %q: status %d: %s", id, r.Status, truncate(r.Body))
		}
		in, err := decodeInsights(r.Body)
		if err != nil {
			return in, err
		}
		if in.Status != "pending" {
			return in, nil
		}
		if in.AnalysedAt != nil || in.Leads != nil {
			return in, fmt.Errorf("pending insights of %q carry analysed_at or leads: %s", id, r.Body)
		}
		if time.Now().After(deadline) {
			return in, fmt.Errorf("insights of %q still pending after %s", id, within)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// expectAnalysed waits for the ECG's analysis and checks its insights against u.
func (s *server) expectAnalysed(token, id string, u ecgUpload, within time.Duration) ecgInsights {
	s.t.Helper()
	in, err := s.waitInsights(token, id, within)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := checkInsights(u, id, in); err != nil {
		s.t.Fatal(err)
	}
	return in
}

// getECG reads an ECG with its signals and checks it against u; the response must carry its
// exact length. Safe from any goroutine.
func (s *server) getECG(token, id string, u ecgUpload) (ecgDoc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := s.try(ctx, nil, "GET", ecgPath(id), token, nil, nil)
	if err != nil {
		return ecgDoc{}, err
	}
	if r.Status != http.StatusOK {
		return ecgDoc{}, fmt.Errorf("GET ECG %q: status %d: %s", id, r.Status, truncate(r.Body))
	}
	if cl := r.Header.Get("Content-Length"); cl != strconv.Itoa(len(r.Body)) {
		return ecgDoc{}, fmt.Errorf("GET ECG %q: Content-Length %q for a body of %d bytes", id, cl, len(r.Body))
	}
	return checkDoc(u, id, r.Body)
}

// ecgPage is one page of GET /ecgs.
type ecgPage struct {
	ECGs       []ecgSummary `json:"ecgs"`
	NextCursor *string      `json:"next_cursor"`
}

// listECGs follows next_cursor from the first page to the last, with limit (0: the default),
// and returns every summary in the order the pages gave them.
func (s *server) listECGs(token string, limit int) []ecgSummary {
	s.t.Helper()
	var all []ecgSummary
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			s.t.Fatal("ECG paging does not end")
		}
		v := url.Values{}
		if limit > 0 {
			v.Set("limit", strconv.Itoa(limit))
		}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		r := s.do("GET", "/api/v1/ecgs?"+v.Encode(), token, nil)
		expect(s.t, r, http.StatusOK)
		var p ecgPage
		if err := json.Unmarshal(r.Body, &p); err != nil {
			s.t.Fatalf("ECG page: %v: %s", err, truncate(r.Body))
		}
		if p.ECGs == nil {
			s.t.Fatalf("ECG page without an ecgs array: %s", truncate(r.Body))
		}
		if limit > 0 && len(p.ECGs) > limit {
			s.t.Fatalf("page of %d ECGs for limit %d", len(p.ECGs), limit)
		}
		all = append(all, p.ECGs...)
		if p.NextCursor == nil {
			return all
		}
		if *p.NextCursor == "" || len(p.ECGs) == 0 {
			s.t.Fatalf("page of %d ECGs with next_cursor %q", len(p.ECGs), *p.NextCursor)
		}
		cursor = *p.NextCursor
	}
}

// headersOnly sends a request's headers and the first bytes of its body, declaring a
// Content-Length of declared bytes, and reads the answer without ever sending the rest: a
// service that waits for the body before answering makes it time out. The answer is checked
// against the document like do's.
func (s *server) headersOnly(method, path string, headers map[string]string, declared int64, first []byte) response {
	s.t.Helper()
	addr := strings.TrimPrefix(s.base, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, path, addr, declared)
	for k, v := range headers {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	req.Write(first)
	if _, err := conn.Write(req.Bytes()); err != nil {
		s.t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	httpReq, err := http.NewRequest(method, s.base+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), httpReq)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			s.t.Fatalf("%s %s with %d bytes declared and %d sent: no answer within 10 s; the service waits for the body", method, path, declared, len(first))
		}
		s.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading the answer's body: %v", method, path, err)
	}
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	responseHook(s, httpReq, r)
	return r
}

// kill ends the process with SIGKILL, as a crash or the OOM killer would: no shutdown, no
// handing back of jobs, transactions cut wherever they are.
func (s *server) kill() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.t.Fatal("the process did not die within 10 s of SIGKILL")
	}
}

// metric reads one series from /metrics (0 when it is absent).
func (s *server) metric(series string) float64 {
	s.t.Helper()
	r := s.do("GET", "/metrics", "", nil)
	expect(s.t, r, http.StatusOK)
	v, _ := metricValue(string(r.Body), series)
	return v
}

// envValue returns the value of name in env, the last one winning as for a process.
func envValue(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if rest, ok := strings.CutPrefix(kv, name+"="); ok {
			v = rest
		}
	}
	return v
}

// openDB opens the server's database directly, for the checks the API cannot make (rows
// left in tables) and for preparing states it cannot reach (outdated results). It is closed
// when the test ends.
func (s *server) openDB() *sql.DB {
	s.t.Helper()
	var db *sql.DB
	var err error
	switch driver, dsn := envValue(s.env, "APP_DATABASE_DRIVER"), envValue(s.env, "APP_DATABASE_DSN"); driver {
	case "mysql":
		db, err = sql.Open("mysql", dsn)
	case "sqlite":
		db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=busy_timeout(5000)")
	default:
		s.t.Fatalf("unknown database driver %q", driver)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = db.Close() })
	return db
}

// count runs a COUNT query and returns its number.
func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// ecgBackends runs fn as a parallel subtest per database, each with its own server started
// with fast hashing and extra settings.
func ecgBackends(t *testing.T, extra []string, fn func(t *testing.T, s *server)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, startServer(t, b.env(t), withFastHashing(extra...)...))
		})
	}
}

// ecgBackendsWithAdmin is ecgBackends with a bootstrap admin, handed to fn logged in.
func ecgBackendsWithAdmin(t *testing.T, extra []string, fn func(t *testing.T, s *server, admin account)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			email := uniqueEmail("root")
			env := withFastHashing(append([]string{"APP_BOOTSTRAP_ADMIN_EMAIL=" + email, "APP_BOOTSTRAP_ADMIN_PASSWORD=" + adminPassword}, extra...)...)
			s := startServer(t, b.env(t), env...)
			fn(t, s, s.loginAs(email, adminPassword))
		})
	}
}
