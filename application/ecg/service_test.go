package ecg_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	ecgapp "github.com/acme/postsvc/application/ecg"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	ecgport "github.com/acme/postsvc/ports/ecg"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/fakes/ecgfake"
)

// countAnalysis is a test analysis: the number of samples, at a version the test chooses,
// failing while fail is set.
type countAnalysis struct {
	name    string
	version int
	fail    *error
	runs    *int
}

func (a countAnalysis) Name() string       { return a.name }
func (a countAnalysis) Version() int       { return a.version }
func (a countAnalysis) Measures() []string { return []string{a.name + "_n"} }
func (a countAnalysis) Analyse(samples []int32) ([]ecg.Measure, error) {
	if a.runs != nil {
		*a.runs++
	}
	if a.fail != nil && *a.fail != nil {
		return nil, *a.fail
	}
	return []ecg.Measure{{Name: a.name + "_n", Value: ecg.Int(int64(len(samples)))}}, nil
}

// sumAnalysis adds the samples up, so a test can tell which samples an analysis saw.
type sumAnalysis struct{}

func (sumAnalysis) Name() string       { return "sum" }
func (sumAnalysis) Version() int       { return 1 }
func (sumAnalysis) Measures() []string { return []string{"sum"} }
func (sumAnalysis) Analyse(samples []int32) ([]ecg.Measure, error) {
	var s int64
	for _, v := range samples {
		s += int64(v)
	}
	return []ecg.Measure{{Name: "sum", Value: ecg.Int(s)}}, nil
}

type fixture struct {
	env      *fakes.Env
	spools   *ecgfake.Spools
	settings ecgapp.Settings
	svc      *ecgapp.Service
	failNext error
	runs     int
}

func newFixture(t *testing.T, analyses ...ecgport.Analysis) *fixture {
	t.Helper()
	f := &fixture{env: fakes.NewEnv(), spools: &ecgfake.Spools{}, settings: ecgapp.Settings{QuotaBytes: 1 << 40}}
	if analyses == nil {
		analyses = []ecgport.Analysis{countAnalysis{name: "count", version: 1, fail: &f.failNext, runs: &f.runs}, sumAnalysis{}}
	}
	if err := ecgapp.Analyses(analyses).Validate(); err != nil {
		t.Fatal(err)
	}
	f.svc = ecgapp.NewService(f.env.Store, ecgfake.Store{}, f.spools, f.env.Jobs, analyses, f.env.Clock, f.env.IDs, f.settings)
	return f
}

func (f *fixture) user() identity.Principal {
	return identity.Principal{UserID: f.env.NewUser(), Role: identity.RoleUser}
}

func (f *fixture) handlers() map[string]func(context.Context, ports.Job) error {
	return map[string]func(context.Context, ports.Job) error{
		ecgapp.AnalyseJob: f.svc.Analyse, ecgapp.ReanalyseJob: f.svc.Reanalyse,
	}
}

func ptr[T any](v T) *T { return &v }

// upload sends leads (name -> samples) as the HTTP module would: the signals into the
// caller's spool, then the draft.
func (f *fixture) upload(t *testing.T, p identity.Principal, id string, leads ...[]int32) (*ecg.ECG, bool, error) {
	t.Helper()
	return f.uploadWith(t, context.Background(), p, id, nil, leads...)
}

// uploadWith is upload with the caller's context, its spool wrapped by wrap when not nil.
func (f *fixture) uploadWith(t *testing.T, ctx context.Context, p identity.Principal, id string, wrap func(ecgport.Spool) ecgport.Spool, leads ...[]int32) (*ecg.ECG, bool, error) {
	t.Helper()
	spool, err := f.svc.Receive(ctx, p)
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = spool.Close() }()
	if wrap != nil {
		spool = wrap(spool)
	}
	d := ecg.Draft{ID: id, IDSent: id != "", Date: ptr("2026-01-01T10:00:00Z")}
	var w *ecg.SignalWriter
	for i, samples := range leads {
		w = ecg.NewSignalWriter(w, spool, i, func() string { return "" })
		for _, v := range samples {
			if err := w.Add(int64(v)); err != nil {
				t.Fatal(err)
			}
		}
		sig, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		d.Leads = append(d.Leads, ecg.LeadDraft{Name: ptr(fmt.Sprintf("L%d", i)), Signal: sig, SignalSent: true})
	}
	return f.svc.Upload(ctx, p, d, spool)
}

func (f *fixture) runJobs(t *testing.T) {
	t.Helper()
	if _, err := f.env.RunJobs(context.Background(), f.handlers()); err != nil {
		t.Fatalf("jobs: %v", err)
	}
}

func measureValues(in ecg.Insights) [][]string {
	var out [][]string
	for _, l := range in.Leads {
		var row []string
		for _, m := range l.Measures {
			row = append(row, m.Name+"="+m.Value.String())
		}
		out = append(out, row)
	}
	return out
}

func TestAdminsHoldNoECGs(t *testing.T) {
	f := newFixture(t)
	admin := identity.Principal{UserID: f.env.NewUser(), Role: identity.RoleAdmin}
	ctx := context.Background()
	if _, err := f.svc.Receive(ctx, admin); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("receive: %v", err)
	}
	if f.spools.Open != 0 {
		t.Error("an admin's upload got a spool")
	}
	if _, _, err := f.svc.Upload(ctx, admin, ecg.Draft{}, nil); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("upload: %v", err)
	}
	if _, err := f.svc.List(ctx, admin, ports.PageRequest{}); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("list: %v", err)
	}
	if _, err := f.svc.Get(ctx, admin, "x"); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("get: %v", err)
	}
	if _, err := f.svc.Insights(ctx, admin, "x"); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("insights: %v", err)
	}
	if err := f.svc.Delete(ctx, admin, "x"); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("delete: %v", err)
	}
}

// TestUploadAnalyseAndRead: an upload is stored pending with its job; the job computes every
// analysis over every lead, in the registered order, from exactly the uploaded samples.
func TestUploadAnalyseAndRead(t *testing.T) {
	f := newFixture(t)
	alice := f.user()
	ctx := context.Background()
	e, created, err := f.upload(t, alice, "rec-1", []int32{1, 2, 3}, []int32{-5, 5})
	if err != nil || !created || e.Status() != ecg.StatusPending {
		t.Fatalf("upload: %v created=%v", err, created)
	}
	in, err := f.svc.Insights(ctx, alice, "rec-1")
	if err != nil || in.Status != ecg.StatusPending || in.Leads != nil {
		t.Fatalf("insights before the job: %+v, %v", in, err)
	}
	f.runJobs(t)
	in, err = f.svc.Insights(ctx, alice, "rec-1")
	if err != nil || in.Status != ecg.StatusDone || in.AnalysedAt.IsZero() {
		t.Fatalf("insights after the job: %+v, %v", in, err)
	}
	want := [][]string{{"count_n=3", "sum=6"}, {"count_n=2", "sum=0"}}
	if got := measureValues(in); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("measures %v, want %v", got, want)
	}
	if in.Leads[0].Name != "L0" || in.Leads[1].Name != "L1" {
		t.Fatalf("lead order: %+v", in.Leads)
	}
	// Reading the signal back gives the samples, through the owner only.
	got, err := f.svc.Get(ctx, alice, "rec-1")
	if err != nil {
		t.Fatal(err)
	}
	if samples := readSignals(t, f, alice, got); !slices.Equal(samples[0], []int32{1, 2, 3}) || !slices.Equal(samples[1], []int32{-5, 5}) {
		t.Fatalf("signals read back: %v", samples)
	}
	bob := f.user()
	if _, err := f.svc.Signals(ctx, bob, got); !errors.Is(err, ecg.ErrNotFound) {
		t.Fatalf("another user's signals: %v", err)
	}
	for _, id := range []string{"rec-1", "REC-1", "", "../x"} {
		if _, err := f.svc.Get(ctx, bob, id); !errors.Is(err, ecg.ErrNotFound) {
			t.Errorf("bob gets %q: %v", id, err)
		}
	}
	if f.spools.Open != 0 {
		t.Errorf("%d spools left open", f.spools.Open)
	}
}

// TestRetriedUploadIsHarmless: the same content under the same id is the stored ECG, other
// content is ecg_exists, and neither changes anything or enqueues another analysis.
func TestRetriedUploadIsHarmless(t *testing.T) {
	f := newFixture(t)
	alice := f.user()
	first, _, err := f.upload(t, alice, "rec-1", []int32{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	again, created, err := f.upload(t, alice, "rec-1", []int32{1, 2, 3})
	if err != nil || created || again.Key() != first.Key() {
		t.Fatalf("retry: %v created=%v key %s vs %s", err, created, again.Key(), first.Key())
	}
	if _, _, err := f.upload(t, alice, "rec-1", []int32{1, 2, 4}); !errors.Is(err, ecg.ErrExists) {
		t.Fatalf("other content: %v", err)
	}
	// Another user may use the same id.
	if _, created, err := f.upload(t, f.user(), "rec-1", []int32{9}); err != nil || !created {
		t.Fatalf("bob's rec-1: %v", err)
	}
	if n, err := f.env.RunJobs(context.Background(), f.handlers()); err != nil || n != 2 {
		t.Fatalf("%d analysis jobs ran (%v), want 2: one per stored ECG", n, err)
	}
}

// TestUploadIsOneUnitOfWork: when the analysis job cannot be enqueued, the ECG is not stored
// either, so no ECG ever waits for a job that does not exist.
func TestUploadIsOneUnitOfWork(t *testing.T) {
	f := newFixture(t)
	alice := f.user()
	spool, _ := f.svc.Receive(context.Background(), alice)
	defer func() { _ = spool.Close() }()
	w := ecg.NewSignalWriter(nil, spool, 0, func() string { return "" })
	_ = w.Add(1)
	sig, _ := w.Close()
	d := ecg.Draft{ID: "rec-1", IDSent: true, Date: ptr("2026-01-01T10:00:00Z"), Leads: []ecg.LeadDraft{{Name: ptr("I"), Signal: sig, SignalSent: true}}}
	store := ecgfake.Store{}
	failing := failingJobs{}
	svc := ecgapp.NewService(f.env.Store, store, f.spools, failing, ecgapp.Analyses{sumAnalysis{}}, f.env.Clock, f.env.IDs, f.settings)
	if _, _, err := svc.Upload(context.Background(), alice, d, spool); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("upload with the queue down: %v", err)
	}
	if _, err := f.svc.Get(context.Background(), alice, "rec-1"); !errors.Is(err, ecg.ErrNotFound) {
		t.Fatalf("the ECG was stored without its job: %v", err)
	}
}

type failingJobs struct{}

func (failingJobs) Enqueue(context.Context, ports.Scope, ports.NewJob) (string, error) {
	return "", domain.ErrUnavailable
}

// TestAnalysisRetriesThenFails: a failing analysis leaves the ECG pending and the job
// retried; on the last attempt the ECG is failed with a reason for people, without internals.
func TestAnalysisRetriesThenFails(t *testing.T) {
	f := newFixture(t)
	alice := f.user()
	e, _, err := f.upload(t, alice, "rec-1", []int32{1})
	if err != nil {
		t.Fatal(err)
	}
	f.failNext = errors.New("dial tcp 10.0.0.7:3306: connection refused")
	ctx := context.Background()
	job := ports.Job{ID: "j", Kind: ecgapp.AnalyseJob, Payload: []byte(e.Key()), Attempt: 1, MaxAttempts: 3}
	if err := f.svc.Analyse(ctx, job); err == nil {
		t.Fatal("a failing analysis reported success")
	}
	if in, _ := f.svc.Insights(ctx, alice, "rec-1"); in.Status != ecg.StatusPending {
		t.Fatalf("after a failed attempt: %s", in.Status)
	}
	job.Attempt = 3
	if err := f.svc.Analyse(ctx, job); err == nil {
		t.Fatal("the last failing attempt reported success")
	}
	in, _ := f.svc.Insights(ctx, alice, "rec-1")
	if in.Status != ecg.StatusFailed || in.Failure == "" || strings.Contains(in.Failure, "10.0.0.7") || in.AnalysedAt.IsZero() {
		t.Fatalf("after the last attempt: %+v", in)
	}
	// A job for an ECG deleted meanwhile, or with a payload this service never wrote, settles.
	if err := f.svc.Delete(ctx, alice, "rec-1"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Analyse(ctx, job); err != nil {
		t.Fatalf("job of a deleted ECG: %v", err)
	}
	job.Payload = []byte("not-a-key")
	if err := f.svc.Analyse(ctx, job); !errors.Is(err, ports.ErrPermanentJob) {
		t.Fatalf("job with a foreign payload: %v, want a permanent failure", err)
	}
}

// TestAnalysisGivenUpFailsThePendingECG: when the worker of the last attempt died, the ECG is
// failed with a reason for people; an ECG already done is left alone.
func TestAnalysisGivenUpFailsThePendingECG(t *testing.T) {
	f := newFixture(t)
	alice := f.user()
	ctx := context.Background()
	pending, _, err := f.upload(t, alice, "rec-1", []int32{1})
	if err != nil {
		t.Fatal(err)
	}
	job := ports.Job{ID: "j", Kind: ecgapp.AnalyseJob, Payload: []byte(pending.Key()), Attempt: 3, MaxAttempts: 3, Spent: true}
	if err := f.svc.AnalysisGivenUp(ctx, job); err != nil {
		t.Fatal(err)
	}
	in, _ := f.svc.Insights(ctx, alice, "rec-1")
	if in.Status != ecg.StatusFailed || in.Failure == "" || in.AnalysedAt.IsZero() {
		t.Fatalf("given up: %+v, want failed with a reason", in)
	}
	done, _, _ := f.upload(t, alice, "rec-2", []int32{1, -1})
	f.runJobs(t)
	job.Payload = []byte(done.Key())
	if err := f.svc.AnalysisGivenUp(ctx, job); err != nil {
		t.Fatal(err)
	}
	if in, _ := f.svc.Insights(ctx, alice, "rec-2"); in.Status != ecg.StatusDone {
		t.Fatalf("an analysed ECG given up afterwards: %s, want it left done", in.Status)
	}
	job.Payload = []byte("not-a-key")
	if err := f.svc.AnalysisGivenUp(ctx, job); !errors.Is(err, ports.ErrPermanentJob) {
		t.Fatalf("give-up with a foreign payload: %v, want a permanent failure", err)
	}
}

// TestAnalysisRunsOnceInEffect: a job that runs again after its ECG is done (a worker died
// before settling it) does nothing.
func TestAnalysisRunsOnceInEffect(t *testing.T) {
	f := newFixture(t)
	alice := f.user()
	e, _, _ := f.upload(t, alice, "rec-1", []int32{1, 2})
	f.runJobs(t)
	runs := f.runs
	job := ports.Job{ID: "j", Kind: ecgapp.AnalyseJob, Payload: []byte(e.Key()), Attempt: 1, MaxAttempts: 3}
	if err := f.svc.Analyse(context.Background(), job); err != nil || f.runs != runs {
		t.Fatalf("second run: %v, analyses ran %d more times", err, f.runs-runs)
	}
}

// TestReanalysisBringsResultsUpToDate: after an analysis's version changes, the reanalysis
// walks every analysed ECG, batch after batch, and replaces their results.
func TestReanalysisBringsResultsUpToDate(t *testing.T) {
	f := newFixture(t)
	alice := f.user()
	const n = 120 // more than two batches
	for i := range n {
		if _, _, err := f.upload(t, alice, fmt.Sprintf("rec-%d", i), []int32{int32(i)}); err != nil {
			t.Fatal(err)
		}
	}
	f.runJobs(t)
	// The service restarts with version 2 of the count analysis.
	v2 := newFixture(t, countAnalysis{name: "count", version: 2}, sumAnalysis{})
	v2.env = f.env
	v2.svc = ecgapp.NewService(f.env.Store, ecgfake.Store{}, f.spools, f.env.Jobs,
		ecgapp.Analyses{countAnalysis{name: "count", version: 2}, sumAnalysis{}}, f.env.Clock, f.env.IDs, f.settings)
	ctx := context.Background()
	if _, err := v2.svc.StartReanalysis(ctx); err != nil {
		t.Fatal(err)
	}
	ran, err := f.env.RunJobs(ctx, v2.handlers())
	if err != nil || ran != 3 {
		t.Fatalf("%d reanalysis jobs ran (%v), want 3 batches", ran, err)
	}
	outdated, err := ecgfake.Store{}.ECGs(f.env.Store.Pool()).Outdated(ctx, "", ecgapp.Analyses{countAnalysis{name: "count", version: 2}, sumAnalysis{}}.Versions(), 1000)
	if err != nil || len(outdated) != 0 {
		t.Fatalf("%d ECGs still outdated (%v)", len(outdated), err)
	}
}

// TestDeletedUsersECGsGo: deleting a user removes their ECGs in the deleting transaction and
// their signals and results afterwards, batch by batch.
func TestDeletedUsersECGsGo(t *testing.T) {
	f := newFixture(t)
	alice, bob := f.user(), f.user()
	for i := range 3 {
		_, _, _ = f.upload(t, alice, fmt.Sprintf("a%d", i), []int32{1, 2}, []int32{3})
	}
	kept, _, _ := f.upload(t, bob, "b", []int32{7})
	f.runJobs(t)
	ctx := context.Background()
	err := f.env.Store.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		return f.svc.DeleteUserData(ctx, tx, alice.UserID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if page, err := f.svc.List(ctx, alice, ports.PageRequest{}); err != nil || len(page.ECGs) != 0 {
		t.Fatalf("alice's ECGs after deletion: %d, %v", len(page.ECGs), err)
	}
	if err := f.svc.CleanUpUser(ctx, alice.UserID); err != nil {
		t.Fatal(err)
	}
	if n, err := (ecgfake.Store{}).ECGs(f.env.Store.Pool()).PurgeOwner(ctx, alice.UserID, 100); err != nil || n != 0 {
		t.Fatalf("purge left %d rows (%v)", n, err)
	}
	if _, err := f.svc.Get(ctx, bob, string(kept.ID())); err != nil {
		t.Fatalf("bob's ECG: %v", err)
	}
}

// TestListPages: newest upload first, every ECG exactly once, bad paging input refused.
func TestListPages(t *testing.T) {
	f := newFixture(t)
	alice := f.user()
	for i := range 5 {
		_, _, _ = f.upload(t, alice, fmt.Sprintf("r%d", i), []int32{1})
	}
	ctx := context.Background()
	var ids []string
	req := ports.PageRequest{Limit: 2}
	for {
		page, err := f.svc.List(ctx, alice, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.ECGs {
			ids = append(ids, string(e.ID()))
		}
		if page.NextCursor == "" {
			break
		}
		req.Cursor = page.NextCursor
	}
	if want := []string{"r4", "r3", "r2", "r1", "r0"}; !slices.Equal(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	for _, req := range []ports.PageRequest{{Limit: 101}, {Limit: -1}, {Cursor: "zzzz"}} {
		if _, err := f.svc.List(ctx, alice, req); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%+v: %v", req, err)
		}
	}
}

// TestAnalysesRegistry refuses lists whose results could not be told apart.
func TestAnalysesRegistry(t *testing.T) {
	for name, as := range map[string]ecgapp.Analyses{
		"empty":          {},
		"same name":      {sumAnalysis{}, sumAnalysis{}},
		"version 0":      {countAnalysis{name: "c", version: 0}},
		"shared measure": {countAnalysis{name: "c", version: 1}, renamed{countAnalysis{name: "c", version: 1}, "d"}},
	} {
		if err := as.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// renamed is an analysis under another name that keeps the measures of the one it wraps.
type renamed struct {
	countAnalysis
	as string
}

func (r renamed) Name() string { return r.as }

// TestDamagedSignalFailsAtOnce: samples that do not match what the upload recorded (count or
// hash) are never analysed: the ECG fails at once, without retries.
func TestDamagedSignalFailsAtOnce(t *testing.T) {
	f := newFixture(t)
	alice := f.user()
	ctx := context.Background()
	spool, _ := f.svc.Receive(ctx, alice)
	defer func() { _ = spool.Close() }()
	w := ecg.NewSignalWriter(nil, spool, 0, func() string { return "" })
	for _, v := range []int32{1, 2, 3} {
		_ = w.Add(int64(v))
	}
	sig, _ := w.Close()
	sig.Hash[0] ^= 1 // as if the stored blocks had changed since the upload
	d := ecg.Draft{ID: "rec-1", IDSent: true, Date: ptr("2026-01-01T10:00:00Z"), Leads: []ecg.LeadDraft{{Name: ptr("I"), Signal: sig, SignalSent: true}}}
	e, _, err := f.svc.Upload(ctx, alice, d, spool)
	if err != nil {
		t.Fatal(err)
	}
	job := ports.Job{ID: "j", Kind: ecgapp.AnalyseJob, Payload: []byte(e.Key()), Attempt: 1, MaxAttempts: 10}
	if err := f.svc.Analyse(ctx, job); !errors.Is(err, ports.ErrPermanentJob) {
		t.Fatalf("damaged signal: %v, want a permanent failure", err)
	}
	if f.runs != 0 {
		t.Fatal("an analysis saw a damaged signal")
	}
	in, _ := f.svc.Insights(ctx, alice, "rec-1")
	if in.Status != ecg.StatusFailed || !strings.Contains(in.Failure, "damaged") {
		t.Fatalf("insights: %+v", in)
	}
	// The message's advice must work. Uploading the recording again under the same id
	// changes nothing (the stored ECG, or ecg_exists), and the message said only "upload it
	// again", which leads there.
	if _, created, err := f.upload(t, alice, "rec-1", []int32{1, 2, 3}); created || err != nil && !errors.Is(err, ecg.ErrExists) {
		t.Fatalf("the same upload again: created=%v, %v; want nothing changed", created, err)
	}
	if !strings.Contains(in.Failure, "new id") || !strings.Contains(in.Failure, "delete") {
		t.Fatalf("failure message %q sends its reader to a retry that changes nothing; want a new id or a delete first", in.Failure)
	}
}

// blockCounter counts the Blocks and BlocksOf reads of the repositories it hands out.
type blockCounter struct {
	ecgport.Store
	reads *int
}

func (c blockCounter) ECGs(scope ports.Scope) ecgport.Repository {
	return countedRepo{Repository: c.Store.ECGs(scope), reads: c.reads}
}

type countedRepo struct {
	ecgport.Repository
	reads *int
}

func (r countedRepo) Blocks(ctx context.Context, key ecg.Key, from ecgport.BlockPos, maxBytes int) ([]ecg.Block, error) {
	*r.reads++
	return r.Repository.Blocks(ctx, key, from, maxBytes)
}

func (r countedRepo) BlocksOf(ctx context.Context, keys []ecg.Key) (map[ecg.Key][]ecg.Block, error) {
	*r.reads++
	return r.Repository.BlocksOf(ctx, keys)
}

// TestAnalysisReadsTheSignalOnce: a signal that fits in one read is read with one query;
// storage is not asked again for what follows the last lead's last sample.
func TestAnalysisReadsTheSignalOnce(t *testing.T) {
	f := newFixture(t)
	reads := 0
	analyses := []ecgport.Analysis{countAnalysis{name: "count", version: 1, fail: &f.failNext, runs: &f.runs}, sumAnalysis{}}
	f.svc = ecgapp.NewService(f.env.Store, blockCounter{Store: ecgfake.Store{}, reads: &reads}, f.spools, f.env.Jobs, analyses, f.env.Clock, f.env.IDs, f.settings)
	alice := f.user()
	if _, _, err := f.upload(t, alice, "rec-1", []int32{1, -2, 3}, []int32{4, 5}); err != nil {
		t.Fatal(err)
	}
	f.runJobs(t)
	if in, _ := f.svc.Insights(context.Background(), alice, "rec-1"); in.Status != ecg.StatusDone {
		t.Fatalf("status %s", in.Status)
	}
	if reads != 1 {
		t.Fatalf("the analysis read the signal with %d queries, want 1", reads)
	}
}

// storeWith hands out repositories whose methods the test replaces.
type storeWith struct {
	ecgport.Store
	wrap func(ecgport.Repository) ecgport.Repository
}

func (s storeWith) ECGs(scope ports.Scope) ecgport.Repository { return s.wrap(s.Store.ECGs(scope)) }

// failingBatchSave refuses every batch save, as a batch that met an ECG changed meanwhile does.
type failingBatchSave struct{ ecgport.Repository }

func (failingBatchSave) SaveFirstResults(context.Context, map[ecg.Key][]ecg.Result, time.Time) ([]ecg.Key, error) {
	return nil, errors.New("an ECG of the batch changed meanwhile")
}

// TestBatchSaveFallsBackToOneByOne: when a batch's save fails, each ECG's results are saved on
// their own, and the analyses are done all the same.
func TestBatchSaveFallsBackToOneByOne(t *testing.T) {
	f := newFixture(t)
	store := storeWith{Store: ecgfake.Store{}, wrap: func(r ecgport.Repository) ecgport.Repository { return failingBatchSave{r} }}
	analyses := []ecgport.Analysis{countAnalysis{name: "count", version: 1, fail: &f.failNext, runs: &f.runs}, sumAnalysis{}}
	f.svc = ecgapp.NewService(f.env.Store, store, f.spools, f.env.Jobs, analyses, f.env.Clock, f.env.IDs, f.settings)
	alice := f.user()
	for _, id := range []string{"a", "b"} {
		if _, _, err := f.upload(t, alice, id, []int32{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
	}
	f.runJobs(t)
	for _, id := range []string{"a", "b"} {
		in, err := f.svc.Insights(context.Background(), alice, id)
		if err != nil || in.Status != ecg.StatusDone {
			t.Fatalf("%s after the jobs: %s, %v", id, in.Status, err)
		}
		if got := fmt.Sprint(measureValues(in)); got != "[[count_n=3 sum=6]]" {
			t.Fatalf("%s measures %s", id, got)
		}
	}
}

// pageCounter counts the paged reads (Blocks) and the whole-ECG reads (BlocksOf) apart.
type pageCounter struct {
	ecgport.Repository
	paged, whole *int
}

func (r pageCounter) Blocks(ctx context.Context, key ecg.Key, from ecgport.BlockPos, maxBytes int) ([]ecg.Block, error) {
	*r.paged++
	return r.Repository.Blocks(ctx, key, from, maxBytes)
}

func (r pageCounter) BlocksOf(ctx context.Context, keys []ecg.Key) (map[ecg.Key][]ecg.Block, error) {
	*r.whole++
	return r.Repository.BlocksOf(ctx, keys)
}

// TestLargeECGIsReadPageByPage: an ECG that could pack to more than one read's budget is not
// read whole with the batch's others, but page by page on its own, so no analysis holds more
// than a page of signal; the small one beside it is read whole.
func TestLargeECGIsReadPageByPage(t *testing.T) {
	f := newFixture(t)
	paged, whole := 0, 0
	store := storeWith{Store: ecgfake.Store{}, wrap: func(r ecgport.Repository) ecgport.Repository {
		return pageCounter{Repository: r, paged: &paged, whole: &whole}
	}}
	analyses := []ecgport.Analysis{countAnalysis{name: "count", version: 1, fail: &f.failNext, runs: &f.runs}, sumAnalysis{}}
	f.svc = ecgapp.NewService(f.env.Store, store, f.spools, f.env.Jobs, analyses, f.env.Clock, f.env.IDs, f.settings)
	alice := f.user()
	// 2 × 600,000 samples may pack to 4.8 MB, over the 4 MiB a read takes.
	long := make([]int32, 600_000)
	for i := range long {
		long[i] = int32(i%7) - 3
	}
	if _, _, err := f.upload(t, alice, "large", long, long); err != nil {
		t.Fatal(err)
	}
	f.runJobs(t)
	in, err := f.svc.Insights(context.Background(), alice, "large")
	if err != nil || in.Status != ecg.StatusDone {
		t.Fatalf("large ECG after its job: %s, %v", in.Status, err)
	}
	// 600,000 samples of -3..3: 85,714 whole cycles (sum 0) and the first two of the next (-5).
	if got := fmt.Sprint(measureValues(in)); got != "[[count_n=600000 sum=-5] [count_n=600000 sum=-5]]" {
		t.Fatalf("measures %s", got)
	}
	if paged == 0 || whole != 0 {
		t.Fatalf("the large ECG was read with %d paged and %d whole reads, want paged only", paged, whole)
	}
	if _, _, err := f.upload(t, alice, "small", []int32{1, 2}); err != nil {
		t.Fatal(err)
	}
	paged = 0
	f.runJobs(t)
	if paged != 0 || whole != 1 {
		t.Fatalf("the small ECG was read with %d paged and %d whole reads, want one whole", paged, whole)
	}
}

// TestUploadOfACallerDeletedMeanwhileIsUnauthenticated: an upload whose owner is gone by the
// time it commits (deleted while the request ran) is unauthenticated, not "no such user".
func TestUploadOfACallerDeletedMeanwhileIsUnauthenticated(t *testing.T) {
	f := newFixture(t)
	ghost := identity.Principal{UserID: identity.UserID(f.env.IDs.NewID()), Role: identity.RoleUser}
	if _, _, err := f.upload(t, ghost, "", []int32{1, -1, 2}); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("Upload: %v, want unauthenticated", err)
	}
}

// deletedWhileRead deletes the ECG when its blocks are first read, and returns none of them:
// what the analysis of a large ECG, read page by page, meets when its owner deletes it.
type deletedWhileRead struct {
	ecgport.Repository
	owner identity.UserID
	id    ecg.ID
}

func (r deletedWhileRead) BlocksOf(ctx context.Context, keys []ecg.Key) (map[ecg.Key][]ecg.Block, error) {
	if err := r.Delete(ctx, r.owner, r.id); err != nil {
		return nil, err
	}
	return map[ecg.Key][]ecg.Block{}, nil
}

func (r deletedWhileRead) Blocks(ctx context.Context, key ecg.Key, _ ecgport.BlockPos, _ int) ([]ecg.Block, error) {
	if err := r.Delete(ctx, r.owner, r.id); err != nil && !errors.Is(err, ecg.ErrNotFound) {
		return nil, err
	}
	return nil, nil
}

// TestECGDeletedWhileAnalysedIsNotDamage: blocks that vanish because the ECG was deleted while
// it was measured are a deletion, and the job has nothing left to do; they were reported as
// a damaged signal, a permanent job failure logged at error (outside probe: 2-3 of 6 deletions
// of large ECGs during their analysis).
func TestECGDeletedWhileAnalysedIsNotDamage(t *testing.T) {
	f := newFixture(t)
	alice := f.user()
	analyses := []ecgport.Analysis{countAnalysis{name: "count", version: 1, fail: &f.failNext, runs: &f.runs}, sumAnalysis{}}
	f.svc = ecgapp.NewService(f.env.Store, storeWith{Store: ecgfake.Store{}, wrap: func(r ecgport.Repository) ecgport.Repository {
		return deletedWhileRead{Repository: r, owner: alice.UserID, id: "rec-1"}
	}}, f.spools, f.env.Jobs, analyses, f.env.Clock, f.env.IDs, f.settings)
	e, _, err := f.upload(t, alice, "rec-1", []int32{1, -2, 3}, []int32{4, 5})
	if err != nil {
		t.Fatal(err)
	}
	job := ports.Job{ID: "j", Kind: ecgapp.AnalyseJob, Payload: []byte(e.Key()), Attempt: 1, MaxAttempts: 10}
	if err := f.svc.Analyse(context.Background(), job); err != nil {
		t.Fatalf("the analysis of an ECG deleted while it was read: %v, want nothing to do", err)
	}
}

// deletedBeforeResults deletes the ECG when its results are read: what an insights read
// meets when the owner deletes the ECG between the read of its row and that of its results.
type deletedBeforeResults struct {
	ecgport.Repository
	owner identity.UserID
	id    ecg.ID
}

func (r deletedBeforeResults) Results(ctx context.Context, key ecg.Key) ([]ecg.Result, error) {
	if err := r.Delete(ctx, r.owner, r.id); err != nil && !errors.Is(err, ecg.ErrNotFound) {
		return nil, err
	}
	return r.Repository.Results(ctx, key)
}

// TestInsightsOfAnECGDeletedMeanwhileAreNotFound: an ECG deleted between the read of its row
// (done) and that of its results is not found; it was answered "done" with leads that held
// names and no measures (outside probe on MariaDB: 39 of 750 insights reads racing deletes).
func TestInsightsOfAnECGDeletedMeanwhileAreNotFound(t *testing.T) {
	f := newFixture(t)
	alice := f.user()
	if _, _, err := f.upload(t, alice, "rec-1", []int32{1, -2, 3}, []int32{4, 5}); err != nil {
		t.Fatal(err)
	}
	f.runJobs(t)
	analyses := []ecgport.Analysis{countAnalysis{name: "count", version: 1, fail: &f.failNext, runs: &f.runs}, sumAnalysis{}}
	f.svc = ecgapp.NewService(f.env.Store, storeWith{Store: ecgfake.Store{}, wrap: func(r ecgport.Repository) ecgport.Repository {
		return deletedBeforeResults{Repository: r, owner: alice.UserID, id: "rec-1"}
	}}, f.spools, f.env.Jobs, analyses, f.env.Clock, f.env.IDs, f.settings)
	in, err := f.svc.Insights(context.Background(), alice, "rec-1")
	if !errors.Is(err, ecg.ErrNotFound) {
		t.Fatalf("insights of an ECG deleted while they were read: %+v, %v; want ecg_not_found", in, err)
	}
}

// readSignals reads an ECG's signals through Signals, unpacked lead by lead.
func readSignals(t *testing.T, f *fixture, p identity.Principal, e *ecg.ECG) [][]int32 {
	t.Helper()
	signals, err := f.svc.Signals(context.Background(), p, e)
	if err != nil {
		t.Fatalf("signals: %v", err)
	}
	defer func() { _ = signals.Close() }()
	out := make([][]int32, len(e.Leads()))
	err = signals.Each(func(b ecg.Block) error {
		var err error
		out[b.Lead], err = ecg.AppendUnpacked(out[b.Lead], b.Data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// blocksHook is the fixture's store with a hook called after every read of blocks.
type blocksHook struct {
	ecgport.Store
	after func()
}

func (h blocksHook) ECGs(s ports.Scope) ecgport.Repository {
	return hookedRepo{h.Store.ECGs(s), h.after}
}

type hookedRepo struct {
	ecgport.Repository
	after func()
}

func (r hookedRepo) Blocks(ctx context.Context, key ecg.Key, from ecgport.BlockPos, maxBytes int) ([]ecg.Block, error) {
	blocks, err := r.Repository.Blocks(ctx, key, from, maxBytes)
	r.after()
	return blocks, err
}

// TestSignalsAreWholeOrNotFound: an ECG larger than one read of storage is read on into a
// spool, and handed out whole; one deleted while its signals are read is not found, never a
// part of them (GET /ecgs/{id} then answers 404 instead of a body cut short), and its spool
// is closed. A typical ECG is one read, held in memory.
func TestSignalsAreWholeOrNotFound(t *testing.T) {
	restore := ecgapp.SetSignalBatchBytes(64)
	defer restore()
	f := newFixture(t)
	alice := f.user()
	ctx := context.Background()
	long := make([]int32, 3*ecg.MaxBlockSamples+17)
	for i := range long {
		long[i] = int32(i%977) - 400
	}
	e, _, err := f.upload(t, alice, "long", long, []int32{7, -7})
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	var onRead func()
	f.svc = ecgapp.NewService(f.env.Store, blocksHook{ecgfake.Store{}, func() {
		reads++
		if onRead != nil {
			onRead()
		}
	}}, f.spools, f.env.Jobs, []ecgport.Analysis{sumAnalysis{}}, f.env.Clock, f.env.IDs, f.settings)
	got := readSignals(t, f, alice, e)
	if !slices.Equal(got[0], long) || !slices.Equal(got[1], []int32{7, -7}) {
		t.Fatalf("signals read back differ from the upload (%d and %d samples)", len(got[0]), len(got[1]))
	}
	if reads < 3 || f.spools.Open != 0 {
		t.Fatalf("%d reads of storage, %d spools open: want several reads, into a spool closed since", reads, f.spools.Open)
	}
	// The spool is a read-back one, which leaves uploads their part of the budgets.
	if f.spools.Reads != 1 {
		t.Fatalf("%d read-back spools (Spools.NewRead) for one large read, want 1", f.spools.Reads)
	}

	// One owner is sent at most MaxSpooledReads large ECGs at once (each holds a spool until
	// it is sent); past them the read is shed, and a typical ECG, held in memory, is not.
	small, _, err := f.upload(t, alice, "small", []int32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	var open []ecgport.Signals
	for range ecgapp.MaxSpooledReads {
		sig, err := f.svc.Signals(ctx, alice, e)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, sig)
	}
	if sig, err := f.svc.Signals(ctx, alice, e); !errors.Is(err, domain.ErrOverloaded) {
		if sig != nil {
			_ = sig.Close()
		}
		t.Fatalf("a large read past %d at once: %v, want domain.ErrOverloaded", ecgapp.MaxSpooledReads, err)
	}
	if got := readSignals(t, f, alice, small); !slices.Equal(got[0], []int32{1, 2}) {
		t.Fatalf("a typical ECG while large ones are sent: %v", got)
	}
	_ = open[0].Close()
	_ = open[0].Close() // closing twice gives back one place only
	if open[0], err = f.svc.Signals(ctx, alice, e); err != nil {
		t.Fatalf("a large read once another was sent: %v", err)
	}
	if sig, err := f.svc.Signals(ctx, alice, e); !errors.Is(err, domain.ErrOverloaded) {
		if sig != nil {
			_ = sig.Close()
		}
		t.Fatalf("a spool closed twice gave back two places: %v", err)
	}
	for _, sig := range open {
		_ = sig.Close()
	}
	if f.spools.Open != 0 {
		t.Fatalf("%d spools left open", f.spools.Open)
	}

	// Deleted after the first read: the rest of the blocks are gone.
	reads = 0
	onRead = func() {
		if reads == 1 {
			if err := f.svc.Delete(ctx, alice, "long"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s, err := f.svc.Signals(ctx, alice, e); !errors.Is(err, ecg.ErrNotFound) {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("signals of an ECG deleted while they were read: %v, want ecg.ErrNotFound", err)
	}
	if f.spools.Open != 0 {
		t.Fatalf("%d spools left open after the refused read", f.spools.Open)
	}
}
