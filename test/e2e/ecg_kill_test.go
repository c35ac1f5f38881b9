package e2e

// Process-kill tests of the ECG context: the contract says that an ECG answered 202 is
// analysed exactly once in effect even if the process is killed at any moment, and that no
// insight is ever computed from a half-written ECG. These tests SIGKILL the real binary while
// uploads are streaming and committing, while analyses run, and between an upload's commit
// and its analysis, restart it on the same database, and check what is stored.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// killEnv is the settings of the servers of the kill tests, plus extra: a 1 s job lease (the
// smallest allowed), so that the jobs a killed process held are taken over a second after
// its last heartbeat; and upload spool files in the test's own folder.
func killEnv(t *testing.T, extra ...string) []string {
	return withFastHashing(append([]string{"APP_JOBS_LEASE=1s", "APP_ECG_SPOOL_DIR=" + t.TempDir()}, extra...)...)
}

// ecgShape is an upload body encoded once and sent under many ids, so that the tests spend
// their time in the service rather than in making bodies.
type ecgShape struct {
	u       ecgUpload // without an id
	body    []byte    // without an id
	signals [][]byte  // each lead's signal array as it appears in body, [..]
}

func newShape(leads, samples int, seed uint64) *ecgShape {
	sh := &ecgShape{u: makeECG("", leads, samples, seed)}
	sh.body = sh.u.JSON()
	rest := sh.body
	for range sh.u.Leads {
		start := bytes.Index(rest, []byte(`"signal":[`)) + len(`"signal":`)
		end := start + bytes.IndexByte(rest[start:], ']') + 1
		sh.signals = append(sh.signals, rest[start:end])
		rest = rest[end:]
	}
	return sh
}

// withID returns the body with "id" as its first member.
func (sh *ecgShape) withID(id string) []byte {
	return slices.Concat([]byte(`{"id":`), appendJSONString(nil, id), []byte(","), sh.body[1:])
}

// upload is the shape's upload under id.
func (sh *ecgShape) upload(id string) ecgUpload {
	u := sh.u
	u.ID = id
	return u
}

// checkDocFast checks GET /ecgs/{id} against the shape without decoding millions of samples
// in a race-instrumented test: each lead's signal must appear, in lead order, as exactly the
// text the upload sent, and the document with those signals cut out must decode to the
// ECG's id, date and leads. A document that writes its numbers differently falls back to
// the full decode (checkDoc), which also gives the precise error.
func checkDocFast(sh *ecgShape, id string, body []byte) error {
	skeleton := make([]byte, 0, 1024)
	pos := 0
	for _, sig := range sh.signals {
		i := bytes.Index(body[pos:], sig)
		if i < 0 {
			_, err := checkDoc(sh.upload(id), id, body)
			return err
		}
		skeleton = append(skeleton, body[pos:pos+i]...)
		skeleton = append(skeleton, "[]"...)
		pos += i + len(sig)
	}
	skeleton = append(skeleton, body[pos:]...)
	var d ecgDoc
	dec := json.NewDecoder(bytes.NewReader(skeleton))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return fmt.Errorf("GET ECG %q without its signals: %w: %s", id, err, truncate(skeleton))
	}
	if d.ID != id || len(d.Leads) != len(sh.u.Leads) {
		return fmt.Errorf("GET ECG %q: id %q with %d leads", id, d.ID, len(d.Leads))
	}
	for i, l := range sh.u.Leads {
		if got := d.Leads[i]; got.Name != l.Name || got.Samples != len(l.Signal) || len(got.Signal) != 0 {
			return fmt.Errorf("GET ECG %q: lead %d is %q/%d, want %q/%d with the uploaded samples", id, i, got.Name, got.Samples, l.Name, len(l.Signal))
		}
	}
	return nil
}

// sentECG is one upload of a kill test and what became of it.
type sentECG struct {
	id    string
	shape *ecgShape
	// The answer, if one came: status 0 and err set when the connection broke first.
	status int
	body   []byte
	err    error
	// stored: the ECG exists after the restart; analysedAt: when its insights were first
	// seen done.
	stored     bool
	analysedAt time.Time
}

func (e *sentECG) acknowledged() bool { return e.err == nil && e.status == http.StatusAccepted }

// uploadAll sends every upload at once, each on a connection of its own, and returns when
// all are answered or have failed. onStart, if set, runs once every request has started.
func uploadAll(s *server, token string, sent []*sentECG, parallel int, onStart func()) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, parallel)
	for _, e := range sent {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, err := s.try(ctx, client, "POST", "/api/v1/ecgs", token, bytes.NewReader(e.shape.withID(e.id)), nil)
			e.status, e.body, e.err = r.Status, r.Body, err
		})
	}
	if onStart != nil {
		onStart()
	}
	wg.Wait()
}

// verifySettled checks, after a restart, every upload of a kill test: one answered 202 must
// exist and become done; one that got no answer may be missing (404) or exist and become
// done; every stored ECG has the insights of its whole signal and reads back whole. Nothing
// stays pending (within the deadline), nothing fails. It returns how many are stored.
func verifySettled(t *testing.T, s *server, token string, sent []*sentECG, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	stored := 0
	for _, e := range sent {
		if e.err == nil && e.status != http.StatusAccepted {
			t.Errorf("upload %s was answered %d: %s", e.id, e.status, truncate(e.body))
			continue
		}
		r := s.do("GET", ecgPath(e.id, "/insights"), token, nil)
		if r.Status == http.StatusNotFound {
			if e.acknowledged() {
				t.Errorf("upload %s was answered 202 and is gone after the restart", e.id)
			}
			continue
		}
		expect(t, r, http.StatusOK)
		e.stored = true
		stored++
		in, err := s.waitInsights(token, e.id, max(time.Until(deadline), time.Second))
		if err != nil {
			t.Errorf("upload %s (answered: %v): %v", e.id, e.acknowledged(), err)
			continue
		}
		if err := checkInsights(e.shape.upload(e.id), e.id, in); err != nil {
			t.Errorf("upload %s (answered: %v): %v", e.id, e.acknowledged(), err)
			continue
		}
		if e.analysedAt.IsZero() {
			e.analysedAt = in.analysedAt()
		} else if !e.analysedAt.Equal(in.analysedAt()) {
			t.Errorf("upload %s: analysed again (analysed_at %s, then %s)", e.id, e.analysedAt, in.analysedAt())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		got, err := s.try(ctx, nil, "GET", ecgPath(e.id), token, nil, nil)
		cancel()
		switch {
		case err != nil:
			t.Errorf("GET %s: %v", e.id, err)
		case got.Status != http.StatusOK:
			t.Errorf("GET %s: status %d", e.id, got.Status)
		case got.Header.Get("Content-Length") != fmt.Sprint(len(got.Body)):
			t.Errorf("GET %s: Content-Length %q for %d bytes", e.id, got.Header.Get("Content-Length"), len(got.Body))
		default:
			if err := checkDocFast(e.shape, e.id, got.Body); err != nil {
				t.Error(err)
			}
		}
	}
	return stored
}

// checkTables checks what the API cannot show: no rows of a half-written ECG (blocks or
// results without their ECG), exactly one result per analysis for every ECG, every ECG done
// with the current analyses, and, once the queue has drained, no analysis job left
// (completed jobs are deleted; a failed one would stay).
func checkTables(t *testing.T, s *server, db *sql.DB, ecgs int) {
	t.Helper()
	for what, q := range map[string]string{
		"blocks without their ECG":  "SELECT COUNT(*) FROM ecg_blocks b WHERE NOT EXISTS (SELECT 1 FROM ecgs e WHERE e.ecg_key = b.ecg_key)",
		"results without their ECG": "SELECT COUNT(*) FROM ecg_results r WHERE NOT EXISTS (SELECT 1 FROM ecgs e WHERE e.ecg_key = r.ecg_key)",
		"ECGs without blocks":       "SELECT COUNT(*) FROM ecgs e WHERE NOT EXISTS (SELECT 1 FROM ecg_blocks b WHERE b.ecg_key = e.ecg_key)",
		"ECGs without 2 results":    "SELECT COUNT(*) FROM ecgs e WHERE (SELECT COUNT(*) FROM ecg_results r WHERE r.ecg_key = e.ecg_key) <> 2",
		"ECGs not done":             "SELECT COUNT(*) FROM ecgs WHERE status <> 'done' OR analyses <> '" + currentFingerprint + "' OR analysed_at IS NULL",
	} {
		if n := count(t, db, q); n != 0 {
			t.Errorf("%d %s", n, what)
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM ecgs"); n != ecgs {
		t.Errorf("%d ECG rows, want %d", n, ecgs)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM ecg_results"); n != 2*ecgs {
		t.Errorf("%d result rows for %d ECGs of 2 analyses", n, ecgs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := count(t, db, "SELECT COUNT(*) FROM jobs WHERE kind = 'ecg.analyse'")
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d analysis jobs left in the queue after every ECG is done (failed: %d)", n,
				count(t, db, "SELECT COUNT(*) FROM jobs WHERE kind = 'ecg.analyse' AND status = 'failed'"))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := s.metric(`postsvc_jobs_failed{kind="ecg.analyse"}`); v != 0 {
		t.Errorf("/metrics shows %v failed analysis jobs", v)
	}
}

// recheckOnce reads the insights of every stored upload once more, after the queue drained:
// none was analysed again after it was first seen done.
func recheckOnce(t *testing.T, s *server, token string, sent []*sentECG) {
	t.Helper()
	for _, e := range sent {
		if !e.stored {
			continue
		}
		in, err := s.waitInsights(token, e.id, time.Second)
		if err != nil {
			t.Error(err)
			continue
		}
		if !in.analysedAt().Equal(e.analysedAt) {
			t.Errorf("%s: analysed_at moved from %s to %s: analysed twice", e.id, e.analysedAt, in.analysedAt())
		}
	}
}

// killLog keeps the stderr of each process a test killed, for the failure message.
func killLog(t *testing.T, s *server, what string) {
	t.Helper()
	logs := s.stderr.String()
	t.Cleanup(func() {
		if t.Failed() && logs != "" {
			t.Logf("stderr of the process killed %s:\n%s", what, logs)
		}
	})
}

// TestECGKillDuringUploads starts 20 concurrent uploads (4 of them ~6 MB, so that a kill
// lands mid-body or mid-transaction), SIGKILLs the server at a random moment, restarts it on
// the same database and checks every upload: answered 202 means stored and analysed; no
// answer means not stored at all, or stored whole and analysed; never pending for good,
// never failed, never partly stored. MySQL runs three random kill points, SQLite one.
func TestECGKillDuringUploads(t *testing.T) {
	t.Parallel()
	small := []*ecgShape{newShape(12, 5000, 101), newShape(3, 20000, 102)}
	large := []*ecgShape{newShape(8, 150000, 103), newShape(12, 100000, 104)}
	for _, b := range backends() {
		rounds := 3
		if b.name == "sqlite" {
			rounds = 1
		}
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			seed := uint64(time.Now().UnixNano())
			rng := rand.New(rand.NewPCG(seed, 1))
			t.Logf("seed %d", seed)
			s := startServer(t, b.env(t), killEnv(t)...)
			a := s.signup(uniqueEmail("ecg-kill-uploads"))
			db := s.openDB()
			var all []*sentECG
			for round := range rounds {
				var sent []*sentECG
				for i := range 20 {
					sh := small[i%len(small)]
					if i%5 == 0 {
						sh = large[(i/5)%len(large)]
					}
					sent = append(sent, &sentECG{id: fmt.Sprintf("r%d-%02d", round, i), shape: sh})
				}
				killAt := time.Duration(150+rng.IntN(1850)) * time.Millisecond
				uploadAll(s, a.Access, sent, len(sent), func() {
					time.Sleep(killAt)
					s.kill()
				})
				killLog(t, s, fmt.Sprintf("in round %d", round))
				s.start()
				stored := verifySettled(t, s, a.Access, sent, 20*time.Second)
				acked := 0
				for _, e := range sent {
					if e.acknowledged() {
						acked++
					}
				}
				t.Logf("round %d: killed %s after the uploads started: %d answered 202, %d more stored without an answer, %d not stored",
					round, killAt, acked, stored-acked, len(sent)-stored)
				all = append(all, sent...)
				if t.Failed() {
					return
				}
			}
			// Every stored ECG is listed once, and nothing else.
			var want, got []string
			for _, e := range all {
				if e.stored {
					want = append(want, e.id)
				}
			}
			for _, e := range s.listECGs(a.Access, 100) {
				got = append(got, e.ID)
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("listed %v, want %v", got, want)
			}
			checkTables(t, s, db, len(want))
			recheckOnce(t, s, a.Access, all)
		})
	}
}

// killWhenRunning SIGKILLs the server as soon as the queue shows an analysis job running
// (claimed and not settled), after a random delay of up to maxDelay, and reports how many
// ECGs were still pending then. It fails the test if no analysis starts within 20 s.
func killWhenRunning(t *testing.T, s *server, db *sql.DB, rng *rand.Rand, maxDelay time.Duration) (pending int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for count(t, db, "SELECT COUNT(*) FROM jobs WHERE kind = 'ecg.analyse' AND status = 'running'") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no analysis job was seen running within 20 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(time.Duration(rng.Int64N(int64(maxDelay) + 1)))
	s.kill()
	return count(t, db, "SELECT COUNT(*) FROM ecgs WHERE status = 'pending'")
}

// TestECGKillDuringAnalysis kills the server while analyses run, twice: once while the single
// analysis worker (APP_ECG_WORKERS=1) keeps up with a burst of 12 uploads of a million
// samples each, and once while the restarted process works through the backlog the first
// one left. After the second restart every ECG is done, with the insights of its whole
// signal, analysed exactly once in effect.
func TestECGKillDuringAnalysis(t *testing.T) {
	t.Parallel()
	shape := newShape(1, 1000000, 201)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			seed := uint64(time.Now().UnixNano())
			rng := rand.New(rand.NewPCG(seed, 2))
			t.Logf("seed %d", seed)
			s := startServer(t, b.env(t), killEnv(t, "APP_ECG_WORKERS=1")...)
			a := s.signup(uniqueEmail("ecg-kill-analysis"))
			db := s.openDB()
			var sent []*sentECG
			for i := range 12 {
				sent = append(sent, &sentECG{id: fmt.Sprintf("a-%02d", i), shape: shape})
			}
			uploadAll(s, a.Access, sent, 4, nil)
			for _, e := range sent {
				if !e.acknowledged() {
					t.Fatalf("upload %s: %d %v %s", e.id, e.status, e.err, truncate(e.body))
				}
			}
			pending := killWhenRunning(t, s, db, rng, 100*time.Millisecond)
			killLog(t, s, "first")
			t.Logf("first kill with an analysis running: %d of %d ECGs pending", pending, len(sent))
			s.start()
			if pending > 1 {
				pending = killWhenRunning(t, s, db, rng, 200*time.Millisecond)
				killLog(t, s, "second")
				t.Logf("second kill with an analysis running: %d of %d ECGs pending", pending, len(sent))
				s.start()
			}
			if stored := verifySettled(t, s, a.Access, sent, 30*time.Second); stored != len(sent) {
				t.Fatalf("%d of %d acknowledged ECGs stored", stored, len(sent))
			}
			checkTables(t, s, db, len(sent))
			recheckOnce(t, s, a.Access, sent)
		})
	}
}

// TestECGKillBetweenCommitAndAnalysis kills the server right after uploads were answered 202
// and before their analyses could start: the single analysis worker is busy with a large ECG,
// so the small ones wait in the queue, committed with their jobs. The restarted process
// analyses them all.
func TestECGKillBetweenCommitAndAnalysis(t *testing.T) {
	t.Parallel()
	big := newShape(2, 1000000, 301)
	small := newShape(12, 5000, 302)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, b.env(t), killEnv(t, "APP_ECG_WORKERS=1")...)
			a := s.signup(uniqueEmail("ecg-kill-commit"))
			db := s.openDB()
			sent := []*sentECG{{id: "big", shape: big}}
			for i := range 5 {
				sent = append(sent, &sentECG{id: fmt.Sprintf("small-%d", i), shape: small})
			}
			for _, e := range sent {
				r := s.do("POST", "/api/v1/ecgs", a.Access, e.shape.withID(e.id))
				expect(t, r, http.StatusAccepted)
				e.status = r.Status
			}
			s.kill()
			killLog(t, s, "after the 202s")
			pending := count(t, db, "SELECT COUNT(*) FROM ecgs WHERE status = 'pending' AND ecg_id LIKE 'small-%'")
			queued := count(t, db, "SELECT COUNT(*) FROM jobs WHERE kind = 'ecg.analyse' AND status = 'queued'")
			t.Logf("killed after the last 202: %d small ECGs pending, %d analysis jobs queued", pending, queued)
			if pending == 0 {
				t.Fatal("every small ECG was analysed before the kill: the test did not reach the state it is about")
			}
			s.start()
			if stored := verifySettled(t, s, a.Access, sent, 20*time.Second); stored != len(sent) {
				t.Fatalf("%d of %d acknowledged ECGs stored", stored, len(sent))
			}
			checkTables(t, s, db, len(sent))
			recheckOnce(t, s, a.Access, sent)
		})
	}
}

// TestECGAnalysisKilledOnItsLastAttemptIsFailed: an ECG whose analysis kills its worker on
// every attempt (a poison recording, say, that runs the process out of memory) must not stay
// pending forever once its attempts are spent: its owner must learn that it failed. The first
// 11 attempts are simulated by setting the job's attempt count while no process runs; the 12th
// is a real SIGKILL in the middle of the analysis.
func TestECGAnalysisKilledOnItsLastAttemptIsFailed(t *testing.T) {
	t.Parallel()
	poison := newShape(4, 1000000, 401)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, b.env(t), killEnv(t, "APP_ECG_WORKERS=1")...)
			a := s.signup(uniqueEmail("ecg-kill-last"))
			db := s.openDB()
			expect(t, s.do("POST", "/api/v1/ecgs", a.Access, poison.withID("poison")), http.StatusAccepted)
			s.kill()
			killLog(t, s, "after the upload")
			var key string
			if err := db.QueryRowContext(context.Background(), "SELECT ecg_key FROM ecgs WHERE ecg_id = 'poison'").Scan(&key); err != nil {
				t.Fatal(err)
			}
			// Attempts 1 to 11 were killed too (the next claim is the last attempt).
			res, err := db.ExecContext(context.Background(), "UPDATE jobs SET attempts = max_attempts - 1 WHERE kind = 'ecg.analyse' AND payload = ?", []byte(key))
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				if in, _ := s.waitInsights(a.Access, "poison", 0); in.Status != "pending" {
					t.Fatalf("the ECG was analysed before the kill (%s): the test did not reach the state it is about", in.Status)
				}
				t.Fatalf("%d analysis jobs for the ECG", n)
			}
			s.start()
			// The last attempt, killed mid-analysis.
			deadline := time.Now().Add(20 * time.Second)
			for count(t, db, "SELECT COUNT(*) FROM jobs WHERE status = 'running' AND attempts = max_attempts") == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the last attempt did not start within 20 s")
				}
				time.Sleep(2 * time.Millisecond)
			}
			s.kill()
			killLog(t, s, "on the last attempt")
			s.start()
			// The lease runs out a second after the kill; the next claim finds no attempt left.
			deadline = time.Now().Add(15 * time.Second)
			for {
				in, err := s.waitInsights(a.Access, "poison", time.Second)
				if err == nil && in.Status == "failed" {
					if in.Error == "" || in.AnalysedAt == nil {
						t.Fatalf("failed insights without an error or analysed_at: %+v", in)
					}
					t.Logf("failed: %s", in.Error)
					return
				}
				if err == nil && in.Status == "done" {
					if err := checkInsights(poison.upload("poison"), "poison", in); err != nil {
						t.Fatal(err)
					}
					t.Log("analysed once more after the last attempt was killed")
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("15 s after its last attempt was killed the ECG is still %q (%v); the queue holds %d failed analysis jobs: its owner will see it pending forever",
						in.Status, err, count(t, db, "SELECT COUNT(*) FROM jobs WHERE kind = 'ecg.analyse' AND status = 'failed'"))
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestSQLiteRestartTakesBackRunningJobsAtOnce: with a job lease of 10 minutes, the SQLite
// server killed while an analysis runs analyses it again within seconds of its restart. It
// holds the database's single-process lock, so the process that held the lease is dead and
// the job is released at start; before, it stayed pending until the lease ran out (30 s with
// the default lease, found by an outside probe).
func TestSQLiteRestartTakesBackRunningJobsAtOnce(t *testing.T) {
	t.Parallel()
	sqlite := backends()[0]
	s := startServer(t, sqlite.env(t), withFastHashing("APP_JOBS_LEASE=10m", "APP_ECG_SPOOL_DIR="+t.TempDir(), "APP_ECG_WORKERS=1")...)
	a := s.signup(uniqueEmail("ecg-release"))
	db := s.openDB()
	sent := []*sentECG{{id: "r-1", shape: newShape(1, 1000000, 201)}, {id: "r-2", shape: newShape(1, 1000000, 201)}}
	uploadAll(s, a.Access, sent, 2, nil)
	for _, e := range sent {
		if !e.acknowledged() {
			t.Fatalf("upload %s: %d %v %s", e.id, e.status, e.err, truncate(e.body))
		}
	}
	pending := killWhenRunning(t, s, db, rand.New(rand.NewPCG(1, 2)), 0)
	t.Logf("killed with an analysis running: %d of %d ECGs pending", pending, len(sent))
	s.start()
	if stored := verifySettled(t, s, a.Access, sent, 30*time.Second); stored != len(sent) {
		t.Fatalf("%d of %d acknowledged ECGs stored", stored, len(sent))
	}
}
