package stampboard_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/redisx"
	"github.com/acme/postsvc/adapters/stampboard"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/test/fakes"
	"github.com/acme/postsvc/test/testdb"
	"github.com/acme/postsvc/test/testredis"
)

// openBoard opens a board on cfg whose cut-off table is the one every board of the test
// shares, as instances share their database (see tableOf).
func openBoard(t *testing.T, cfg config.Redis) (*stampboard.Redis, *redisx.Health) {
	t.Helper()
	h := redisx.NewHealth(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b, err := stampboard.OpenRedis(cfg, h, tableOf(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, h
}

var tables sync.Map // testing.TB → *stampboard.MemCutoffs

// tableOf returns the cut-off table the boards of t share.
func tableOf(t testing.TB) *stampboard.MemCutoffs {
	v, loaded := tables.LoadOrStore(t, stampboard.NewMemCutoffs())
	if !loaded {
		t.Cleanup(func() { tables.Delete(t) })
	}
	return v.(*stampboard.MemCutoffs)
}

// behindProxy returns cfg rewritten to reach Redis through a breakable TCP proxy.
func behindProxy(t *testing.T, cfg config.Redis) (config.Redis, *testdb.Proxy) {
	t.Helper()
	u, err := url.Parse(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := testdb.NewProxy(t, u.Host)
	u.Host = p.Addr()
	cfg.URL = u.String()
	return cfg, p
}

func mustRead(t *testing.T, b *stampboard.Redis, user identity.UserID) identity.Stamps {
	t.Helper()
	s, ok := b.Read(t.Context(), user)
	if !ok {
		t.Fatalf("Read(%s) did not vouch", user)
	}
	return s
}

// afterFresh waits until the last barrier round trip before it is no longer fresh
// (stampboard.BarrierFresh): reads that begin after that wait for a round trip of their own.
// A read that begins sooner may still be served from memory, which is safe: a change it must
// see is answered only that long after Redis ran it (TestRedisBoardFreshReadsSeeEveryAnsweredPublish).
func afterFresh() { time.Sleep(stampboard.BarrierFresh + 2*time.Millisecond) }

func TestRedisBoardCountersOnlyMoveForward(t *testing.T) {
	cfg := testredis.Config(t)
	a, _ := openBoard(t, cfg)
	b, _ := openBoard(t, cfg)
	ctx := t.Context()
	if _, ok := b.Read(ctx, "u1"); ok {
		t.Fatal("a user nothing was published for is vouched for")
	}
	a.Publish(ctx, "u1", "posts=3;auth=1")
	if got := mustRead(t, b, "u1"); got != "auth=1;posts=3" {
		t.Fatalf("Read = %q, want auth=1;posts=3", got)
	}
	a.Publish(ctx, "u1", "posts=2;images=4") // an older posts counter arriving late
	if got := mustRead(t, b, "u1"); got != "auth=1;images=4;posts=3" {
		t.Fatalf("Read = %q, want auth=1;images=4;posts=3", got)
	}
}

// TestRedisBoardReadSeesEveryAnsweredPublish is the guarantee the principals rest on: once
// Publish has returned on one instance, a Read that starts afterwards on any other instance
// sees it, although that instance serves reads from its local cache. Each round first makes
// the reader cache the old value, so the new one can only come from an invalidation.
func TestRedisBoardReadSeesEveryAnsweredPublish(t *testing.T) {
	cfg := testredis.Config(t)
	writer, _ := openBoard(t, cfg)
	readers := []*stampboard.Redis{}
	for range 3 {
		r, _ := openBoard(t, cfg)
		readers = append(readers, r)
	}
	ctx := t.Context()
	for i := 1; i <= 300; i++ {
		user := identity.UserID(fmt.Sprintf("u%d", i%7))
		for _, r := range readers {
			r.Read(ctx, user) // cache the current value locally
		}
		want := identity.Stamps(fmt.Sprintf("auth=%d", i))
		writer.Publish(ctx, user, want)
		for n, r := range readers {
			if got := mustRead(t, r, user); got != want {
				t.Fatalf("round %d: reader %d read %q after the publication of %q was answered", i, n, got, want)
			}
		}
	}
}

// TestRedisBoardReadWaitsForInvalidationsOnASlowLink is the same guarantee for an instance
// whose link to Redis is slower than the writer's: the invalidation is on its way when the
// writer is answered, and only the barrier (a round trip on the same connection, which
// returns after it) keeps the reader from serving its stale local copy.
func TestRedisBoardReadWaitsForInvalidationsOnASlowLink(t *testing.T) {
	cfg := testredis.Config(t)
	slowCfg, proxy := behindProxy(t, cfg)
	writer, _ := openBoard(t, cfg)
	reader, _ := openBoard(t, slowCfg)
	ctx := t.Context()
	proxy.Delay(30 * time.Millisecond)
	fresh0, waited0 := reader.ReadStats()
	for i := 1; i <= 5; i++ {
		reader.Read(ctx, "u")
		want := identity.Stamps(fmt.Sprintf("auth=%d", i))
		writer.Publish(ctx, "u", want)
		if got := mustRead(t, reader, "u"); got != want {
			t.Fatalf("round %d: the reader on the slow link read %q after the publication of %q was answered", i, got, want)
		}
	}
	// A round trip takes longer than the fresh window here, so every read waited for one.
	if fresh, waited := reader.ReadStats(); fresh != fresh0 || waited-waited0 != 10 {
		t.Fatalf("ReadStats moved by %d let through and %d waited, want 0 and 10", fresh-fresh0, waited-waited0)
	}
}

// TestRedisBoardFreshReadsSeeEveryAnsweredPublish is the guarantee for reads let through by
// a fresh round trip (no round trip of their own): the reader's link delays every byte by
// 1 ms, so each invalidation reaches it about 1 ms after the writer's publication ran, while
// reads of another user keep its round trips coming and fresh. A publication is answered only
// BarrierFresh (and a margin) after Redis ran it, so a read that begins afterwards either
// finds a round trip fresh that started after the publication (and came back after its
// invalidation) or waits for one. Without that wait the reader served its stale copy.
func TestRedisBoardFreshReadsSeeEveryAnsweredPublish(t *testing.T) {
	cfg := testredis.Config(t)
	slowCfg, proxy := behindProxy(t, cfg)
	writer, _ := openBoard(t, cfg)
	reader, _ := openBoard(t, slowCfg)
	ctx := t.Context()
	writer.Publish(ctx, "other", "auth=1")
	proxy.Delay(time.Millisecond)
	// The reads of the other user pause while one of u is measured, so that the count of
	// reads let through tells whether u's was.
	var (
		pause sync.Mutex
		done  = make(chan struct{})
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			pause.Lock()
			reader.Read(ctx, "other")
			pause.Unlock()
		}
	})
	defer func() { close(done); wg.Wait() }()
	fast := 0
	const rounds = 200
	for i := 1; i <= rounds; i++ {
		reader.Read(ctx, "u") // cache the current value locally
		want := identity.Stamps(fmt.Sprintf("auth=%d", i))
		writer.Publish(ctx, "u", want)
		pause.Lock()
		before, _ := reader.ReadStats()
		got := mustRead(t, reader, "u")
		if after, _ := reader.ReadStats(); after > before {
			fast++
		}
		pause.Unlock()
		if got != want {
			t.Fatalf("round %d: the reader read %q after the publication of %q was answered", i, got, want)
		}
	}
	if fast < rounds/10 {
		t.Fatalf("only %d of %d reads were let through without a round trip of their own; the test did not exercise them", fast, rounds)
	}
	t.Logf("%d of %d reads let through by a fresh round trip", fast, rounds)
}

func TestRedisBoardOutageRefused(t *testing.T) {
	cfg := testredis.Config(t)
	cfg.Timeout = 300 * time.Millisecond
	proxied, proxy := behindProxy(t, cfg)
	b, health := openBoard(t, proxied)
	direct, _ := openBoard(t, cfg)
	ctx := t.Context()

	b.Publish(ctx, "u", "auth=1")
	mustRead(t, b, "u")
	gen := b.Generation()

	proxy.Refuse()
	afterFresh()
	start := time.Now()
	if _, ok := b.Read(ctx, "u"); ok {
		t.Fatal("Read vouched while Redis was unreachable")
	}
	if d := time.Since(start); d > 2*cfg.Timeout {
		t.Fatalf("Read took %v with Redis refused; want at most about the timeout %v", d, cfg.Timeout)
	}
	if b.Generation() == gen {
		t.Fatal("the generation did not change when the connection broke")
	}
	if up, _, outages := health.Stats(); up || outages != 1 {
		t.Fatalf("health = up %v, %d outages; want down after one outage", up, outages)
	}
	// A write committed during the outage is published when Redis answers again, before
	// the board vouches again.
	b.Publish(ctx, "u", "auth=2")
	for range 5 {
		if _, ok := b.Read(ctx, "u"); ok {
			t.Fatal("Read vouched while Redis was unreachable")
		}
	}
	proxy.Restore()
	waitUp(t, b)
	// The other instance holds back until b withdraws its notice from the cut-off table,
	// which it does once it has published what it kept.
	waitVouch(t, direct, "u", "auth=2")
	if up, _, outages := health.Stats(); !up || outages != 1 {
		t.Fatalf("health = up %v, %d outages; want up again after one outage", up, outages)
	}
}

func TestRedisBoardOutageStalled(t *testing.T) {
	cfg := testredis.Config(t)
	cfg.Timeout = 300 * time.Millisecond
	proxied, proxy := behindProxy(t, cfg)
	b, _ := openBoard(t, proxied)
	ctx := t.Context()
	b.Publish(ctx, "u", "auth=1")
	mustRead(t, b, "u")

	proxy.Stall()
	afterFresh()
	// The value is still in the local cache, but the barrier cannot complete: a stalled
	// connection must not serve what may have been invalidated meanwhile.
	start := time.Now()
	if _, ok := b.Read(ctx, "u"); ok {
		t.Fatal("Read vouched from the local cache while Redis was stalled")
	}
	if d := time.Since(start); d > 2*cfg.Timeout {
		t.Fatalf("Read took %v with Redis stalled; want about the timeout %v", d, cfg.Timeout)
	}
	// Once down, reads give up at once instead of waiting for the timeout each.
	start = time.Now()
	for range 20 {
		b.Read(ctx, "u")
	}
	if d := time.Since(start); d > cfg.Timeout {
		t.Fatalf("20 reads took %v while Redis was known down; want no waiting", d)
	}
	proxy.Restore()
	waitUp(t, b)
	mustRead(t, b, "u")
}

// TestRedisBoardWriterCutOffAloneStillInvalidates is a partition of one instance: the writer
// cannot reach Redis while the reader can, so the writer's publication never arrives. Once
// the writer's Publish has returned, the reader must no longer vouch for what it kept. Two
// things see to it: the writer's lease lapses (the reader's next read removes it and moves its
// generation), and the writer says it is cut off through the database (the cut-off table), so
// the reader vouches for nothing until the writer has reached Redis again and published what
// it kept. Without either, the reader served its stale copy for as long as the writer stayed
// cut off.
func TestRedisBoardWriterCutOffAloneStillInvalidates(t *testing.T) {
	for _, mode := range testdb.Cuts() {
		t.Run(mode.Name, func(t *testing.T) {
			cfg := testredis.Config(t)
			cfg.Timeout = 300 * time.Millisecond
			writerCfg, proxy := behindProxy(t, cfg)
			writer, _ := openBoard(t, writerCfg)
			reader, readerHealth := openBoard(t, cfg)
			ctx := t.Context()
			writer.Publish(ctx, "u", "auth=1")
			if got := mustRead(t, reader, "u"); got != "auth=1" {
				t.Fatalf("Read = %q, want auth=1", got)
			}

			mode.Apply(proxy)
			start := time.Now()
			writer.Publish(ctx, "u", "auth=2") // committed on the writer's side, not published
			took := time.Since(start)
			if got, ok := reader.Read(ctx, "u"); ok {
				t.Fatalf("after the cut-off writer's Publish returned (%v), the reader still vouches for %q", took, got)
			}
			if took > 4*time.Second {
				t.Fatalf("Publish took %v with Redis cut; want about the lease (2 s) plus the timeout", took)
			}
			if n := tableOf(t).Len(); n != 1 {
				t.Fatalf("the cut-off table holds %d rows, want the writer's", n)
			}
			if readerHealth.Cutoffs() != 1 {
				t.Fatalf("the reader counts %d cut-off instances, want 1", readerHealth.Cutoffs())
			}
			// Whatever the reader reads from the database and publishes meanwhile, it vouches
			// for nothing while the writer stays cut off.
			reader.Publish(ctx, "u", "auth=2")
			if _, ok := reader.Read(ctx, "u"); ok {
				t.Fatal("the reader vouched while the writer was cut off")
			}

			proxy.Restore()
			waitUp(t, writer)
			if got := mustRead(t, writer, "u"); got != "auth=2" {
				t.Fatalf("the writer reads %q after it came back, want auth=2", got)
			}
			// The writer removes its row once it has published what it kept; the reader then
			// vouches again.
			waitVouch(t, reader, "u", "auth=2")
			if n := tableOf(t).Len(); n != 0 {
				t.Fatalf("the cut-off table holds %d rows after the writer came back, want none", n)
			}
		})
	}
}

// TestRedisBoardWriterThatNeverReachedRedisStillInvalidates: an instance that cannot reach
// Redis from the moment it starts holds no lease to let lapse, so only the cut-off table tells
// the others about its writes. Without it, the reader vouched for its stale copy under the
// same generation.
func TestRedisBoardWriterThatNeverReachedRedisStillInvalidates(t *testing.T) {
	for _, mode := range testdb.Cuts() {
		t.Run(mode.Name, func(t *testing.T) {
			cfg := testredis.Config(t)
			cfg.Timeout = 300 * time.Millisecond
			reader, _ := openBoard(t, cfg)
			ctx := t.Context()
			reader.Publish(ctx, "u", "auth=1")
			if got := mustRead(t, reader, "u"); got != "auth=1" {
				t.Fatalf("Read = %q, want auth=1", got)
			}
			gen := reader.Generation()

			writerCfg, proxy := behindProxy(t, cfg)
			mode.Apply(proxy)
			writer, _ := openBoard(t, writerCfg)
			if writer.Up() {
				t.Fatal("the writer reached Redis through a cut proxy")
			}
			start := time.Now()
			writer.Publish(ctx, "u", "auth=2")
			took := time.Since(start)
			if got, ok := reader.Read(ctx, "u"); ok {
				t.Fatalf("after Publish on an instance that never reached Redis returned (%v), the reader vouches for %q (generation %d, was %d)",
					took, got, reader.Generation(), gen)
			}
			if took < time.Second || took > 4*time.Second {
				t.Fatalf("Publish took %v; want the table's read interval (1 s) or the lease, at most about 2.3 s", took)
			}

			proxy.Restore()
			waitUp(t, writer)
			waitVouch(t, reader, "u", "auth=2")
		})
	}
}

// TestRedisBoardVouchesOnlyWhileItReadsTheCutoffTable: a board that cannot read the table
// (its database is unreachable) cannot know whether another instance is cut off, so after a
// second it vouches for nothing, and again once it can read it.
func TestRedisBoardVouchesOnlyWhileItReadsTheCutoffTable(t *testing.T) {
	var logs fakes.LogBuffer
	h := redisx.NewHealth(slog.New(slog.NewTextHandler(&logs, nil)))
	b, err := stampboard.OpenRedis(testredis.Config(t), h, tableOf(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx := t.Context()
	b.Publish(ctx, "u", "auth=1")
	mustRead(t, b, "u")
	table := tableOf(t)
	table.SetFailing(true)
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, ok := b.Read(ctx, "u"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the board still vouched 3 s after it last read the cut-off table")
		}
		time.Sleep(20 * time.Millisecond)
	}
	logged := func(what string) bool { return strings.Contains(logs.String(), what) }
	waitLogged(t, func() bool { return logged("cannot read the board_cutoffs table") }, "the failure to read the table")
	time.Sleep(time.Second) // more failed reads, not logged again
	table.SetFailing(false)
	waitVouch(t, b, "u", "auth=1")
	waitLogged(t, func() bool { return logged("reads the board_cutoffs table again") }, "the return")
	if n := strings.Count(logs.String(), "cannot read the board_cutoffs table"); n != 1 {
		t.Errorf("the failure to read the table was logged %d times, want once:\n%s", n, logs.String())
	}
}

func waitLogged(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s was not logged within 3 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitVouch waits up to 5 s for b to vouch for want.
func waitVouch(t *testing.T, b *stampboard.Redis, user identity.UserID, want identity.Stamps) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, ok := b.Read(t.Context(), user)
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Read = %q, %v; want %q vouched for within 5 s", got, ok, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisBoardHealthyInstancesKeepTheirCaches: while every instance renews its lease, no
// read moves another's generation, so the principals they keep stay in memory.
func TestRedisBoardHealthyInstancesKeepTheirCaches(t *testing.T) {
	cfg := testredis.Config(t)
	a, _ := openBoard(t, cfg)
	b, _ := openBoard(t, cfg)
	a.Publish(t.Context(), "u", "auth=1")
	ga, gb := a.Generation(), b.Generation()
	deadline := time.Now().Add(3 * time.Second) // longer than a lease
	for time.Now().Before(deadline) {
		mustRead(t, a, "u")
		mustRead(t, b, "u")
		time.Sleep(50 * time.Millisecond)
	}
	if a.Generation() != ga || b.Generation() != gb {
		t.Fatalf("generations moved from %d, %d to %d, %d with both instances healthy", ga, gb, a.Generation(), b.Generation())
	}
}

// TestRedisBoardClosedInstanceLeavesQuietly: an instance that stops cleanly leaves the
// membership set, so the others keep what they cached; one that dies lapses, and they read
// again.
func TestRedisBoardClosedInstanceLeavesQuietly(t *testing.T) {
	cfg := testredis.Config(t)
	reader, _ := openBoard(t, cfg)
	closing, _ := openBoard(t, cfg)
	reader.Publish(t.Context(), "u", "auth=1")
	mustRead(t, reader, "u")
	gen := reader.Generation()
	closing.Close()
	time.Sleep(lapse)
	mustRead(t, reader, "u")
	if reader.Generation() != gen {
		t.Fatal("an instance that closed cleanly moved the others' generation")
	}

	dyingCfg, proxy := behindProxy(t, cfg)
	dying, _ := openBoard(t, dyingCfg)
	mustRead(t, dying, "u")
	mustRead(t, reader, "u")
	gen = reader.Generation()
	proxy.Refuse() // it can no longer renew, as if it died
	time.Sleep(lapse)
	mustRead(t, reader, "u")
	if reader.Generation() == gen {
		t.Fatal("an instance whose lease lapsed did not move the others' generation")
	}
}

// lapse is longer than a lease plus a renewal attempt.
const lapse = 2*time.Second + 700*time.Millisecond

func waitUp(t *testing.T, b *stampboard.Redis) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !b.Up() {
		if time.Now().After(deadline) {
			t.Fatal("the board did not vouch again within 10 s of Redis answering")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisBoardKeysUseThePrefix(t *testing.T) {
	cfg := testredis.Config(t)
	b, _ := openBoard(t, cfg)
	b.Publish(t.Context(), "someone", "auth=1")
	c := testredis.Client(t, cfg)
	keys, err := c.Do(context.Background(), c.B().Keys().Pattern(cfg.Prefix+"*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	want := []string{cfg.Prefix + "board:{members}", cfg.Prefix + "board:{members}:epoch", cfg.Prefix + "stamps:{someone}"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys under the prefix = %v, want %v (the membership set, its epoch, one stamps hash)", keys, want)
	}
	for _, k := range keys {
		ttl, err := c.Do(context.Background(), c.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil || ttl <= 0 {
			t.Fatalf("PTTL %s = %d, %v; want a bounded lifetime", k, ttl, err)
		}
	}
}

// BenchmarkRedisBoardRead is the board's part of every authenticated request with Redis: the
// barrier round trip (shared by concurrent reads) and the stamps from the client-side cache.
func BenchmarkRedisBoardRead(b *testing.B) {
	cfg := testredis.Config(b)
	h := redisx.NewHealth(slog.New(slog.NewTextHandler(io.Discard, nil)))
	board, err := stampboard.OpenRedis(cfg, h, tableOf(b))
	if err != nil {
		b.Fatal(err)
	}
	defer board.Close()
	ctx := context.Background()
	board.Publish(ctx, "u1", identity.Stamps("posts=3;session=7"))
	if s, ok := board.Read(ctx, "u1"); !ok || s != "posts=3;session=7" {
		b.Fatalf("Read = %q, %v", s, ok)
	}
	b.ReportAllocs()
	b.SetParallelism(32) // 64 readers on two cores, like the load runner's clients
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := board.Read(ctx, "u1"); !ok {
				b.Error("Read did not vouch")
				return
			}
		}
	})
}
