package argon2id

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/postsvc/ports/accounts"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/user"
)

// testClient is the client every test of this file hashes for, unless it says otherwise.
const testClient accounts.ClientKey = "192.0.2.1"

// fastConfig keeps Argon2 cheap so the tests run quickly under -race; the code paths are the
// same as with production parameters.
func fastConfig() config.Auth {
	return config.Auth{Argon2MemoryKiB: 64, Argon2Iterations: 1, Argon2Parallelism: 1, MaxConcurrentHashes: 4}
}

func TestHashVerifyRoundTrip(t *testing.T) {
	h := NewHasher(fastConfig())
	ctx := context.Background()
	passwords := []string{
		"correct horse battery staple",
		"ünïcödé パスワード 🔑",
		strings.Repeat("p", 1024),
		// Two passwords that share a long prefix must not collide: nothing is truncated.
		strings.Repeat("a", 200) + "1",
	}
	for _, pw := range passwords {
		hash, err := h.Hash(ctx, testClient, pw)
		if err != nil {
			t.Fatalf("Hash: %v", err)
		}
		if strings.Contains(string(hash), pw) {
			t.Fatal("hash contains the plain password")
		}
		ok, err := h.Verify(ctx, testClient, hash, pw)
		if err != nil || !ok {
			t.Fatalf("Verify(own hash) = %v, %v; want true, nil", ok, err)
		}
		ok, err = h.Verify(ctx, testClient, hash, pw+"x")
		if err != nil || ok {
			t.Fatalf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
		}
	}
	long := strings.Repeat("a", 200)
	hash, _ := h.Hash(ctx, testClient, long+"1")
	if ok, _ := h.Verify(ctx, testClient, hash, long+"2"); ok {
		t.Fatal("passwords differing only at byte 201 verified as equal: the input was truncated")
	}
}

func TestHashFormatAndUniqueSalt(t *testing.T) {
	h := NewHasher(config.Auth{Argon2MemoryKiB: 96, Argon2Iterations: 3, Argon2Parallelism: 2, MaxConcurrentHashes: 1})
	a, err := h.Hash(context.Background(), testClient, "password1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.Hash(context.Background(), testClient, "password1")
	if a == b {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
	if !strings.HasPrefix(string(a), "$argon2id$v=19$m=96,t=3,p=2$") {
		t.Fatalf("hash %q does not record the configured parameters", a)
	}
	d, err := decode(string(a))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.salt) != saltLen || len(d.key) != keyLen {
		t.Fatalf("salt %d bytes, key %d bytes; want %d and %d", len(d.salt), len(d.key), saltLen, keyLen)
	}
}

func TestDefaultsAreOWASP(t *testing.T) {
	h := NewHasher(config.Auth{})
	want := params{memory: 19456, iterations: 2, parallelism: 1}
	if h.params != want {
		t.Fatalf("zero config params = %+v, want %+v", h.params, want)
	}
	clamped := NewHasher(config.Auth{Argon2MemoryKiB: 1, Argon2Iterations: 1000, Argon2Parallelism: 4})
	if clamped.params.memory != 32 || clamped.params.iterations != maxIterations {
		t.Fatalf("out-of-range config not clamped: %+v", clamped.params)
	}
}

// TestAClientsShareOfTheSlots: by default a client may hold half the slots, at least one;
// a configured share is kept within the slot count.
func TestAClientsShareOfTheSlots(t *testing.T) {
	for _, c := range []struct{ slots, share, want int }{
		{4, 0, 2}, {0, 0, DefaultMaxConcurrent / 2}, {1, 0, 1}, {3, 0, 1}, {8, 0, 4}, {4, 3, 3}, {4, 9, 4},
	} {
		h := NewHasher(config.Auth{MaxConcurrentHashes: c.slots, MaxHashesPerClient: c.share})
		if got := h.gate.maxRunningPerClient; got != c.want {
			t.Errorf("%d slots, share setting %d: a client may hold %d, want %d", c.slots, c.share, got, c.want)
		}
	}
}

func TestVerifyUsesParametersStoredInHash(t *testing.T) {
	ctx := context.Background()
	old := NewHasher(config.Auth{Argon2MemoryKiB: 64, Argon2Iterations: 1, Argon2Parallelism: 1})
	hash, err := old.Hash(ctx, testClient, "password1")
	if err != nil {
		t.Fatal(err)
	}
	// The cost was raised after the hash was stored; the old hash must still verify.
	current := NewHasher(config.Auth{Argon2MemoryKiB: 128, Argon2Iterations: 2, Argon2Parallelism: 2})
	if ok, err := current.Verify(ctx, testClient, hash, "password1"); err != nil || !ok {
		t.Fatalf("old-parameter hash: Verify = %v, %v; want true, nil", ok, err)
	}
	if !current.NeedsRehash(hash) {
		t.Fatal("NeedsRehash = false for a hash made with other parameters")
	}
	if old.NeedsRehash(hash) {
		t.Fatal("NeedsRehash = true for a hash made with the current parameters")
	}
	// Changing a stored parameter changes the derived key, so it must not verify: this proves
	// the parameters are read from the hash rather than from configuration.
	tampered := user.PasswordHash(strings.Replace(string(hash), "t=1", "t=2", 1))
	if ok, err := old.Verify(ctx, testClient, tampered, "password1"); err != nil || ok {
		t.Fatalf("tampered t: Verify = %v, %v; want false, nil", ok, err)
	}
}

func TestVerifyKnownVector(t *testing.T) {
	// Made independently with the reference CLI: echo -n password | argon2 somesalt -id -t 2 -m 16 -p 1 -l 32 -e.
	// The "-m 16" there is log2 of the memory: 65536 KiB.
	const vector = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	h := NewHasher(fastConfig())
	ok, err := h.Verify(context.Background(), testClient, vector, "password")
	if err != nil || !ok {
		t.Fatalf("reference vector: Verify = %v, %v; want true, nil", ok, err)
	}
}

func TestVerifyMalformedHashIsError(t *testing.T) {
	h := NewHasher(fastConfig())
	valid, err := h.Hash(context.Background(), testClient, "password1")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(string(valid), "$")
	salt, key := f[4], f[5]
	cases := map[string]string{
		"empty":             "",
		"garbage":           "not a hash",
		"bcrypt":            "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":           "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"no version":        "$argon2id$m=64,t=1,p=1$" + salt + "$" + key,
		"version 16":        "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"params reordered":  "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"missing p":         "$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"zero t":            "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"negative m":        "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key,
		"signed t":          "$argon2id$v=19$m=64,t=+1,p=1$" + salt + "$" + key,
		"leading zero":      "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"p overflows uint8": "$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key,
		"m too small":       "$argon2id$v=19$m=4,t=1,p=1$" + salt + "$" + key,
		"m too large":       "$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key,
		"t too large":       "$argon2id$v=19$m=64,t=100000,p=1$" + salt + "$" + key,
		"salt not base64":   "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key,
		"salt padded":       "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key,
		"salt too short":    "$argon2id$v=19$m=64,t=1,p=1$YWJj$" + key,
		"key too short":     "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$YWJj",
		"empty key":         "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
		"extra field":       string(valid) + "$x",
		"no leading dollar": strings.TrimPrefix(string(valid), "$"),
	}
	for name, hash := range cases {
		t.Run(name, func(t *testing.T) {
			ok, err := h.Verify(context.Background(), testClient, user.PasswordHash(hash), "password1")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify = %v, %v; want false, ErrMalformedHash", ok, err)
			}
			if h.InFlight() != 0 {
				t.Fatal("a malformed hash started a derivation")
			}
		})
	}
}

// TestConcurrencyIsBounded replaces the key derivation with one that records how many runs
// overlap and holds each run long enough for the goroutines to pile up. Without the semaphore
// all twenty would overlap.
func TestConcurrencyIsBounded(t *testing.T) {
	const limit, callers = 3, 20
	// A queue long enough for every caller, so that none is shed, and a client's share of
	// every slot (gate_test.go covers both).
	h := NewHasher(config.Auth{Argon2MemoryKiB: 64, Argon2Iterations: 1, Argon2Parallelism: 1, MaxConcurrentHashes: limit,
		MaxQueuedHashes: callers, MaxQueuedPerClient: callers, MaxHashesPerClient: limit})
	var current, peak, gaugePeak atomic.Int64
	real := h.derive
	h.derive = func(password, salt []byte, p params, n uint32) []byte {
		now := current.Add(1)
		defer current.Add(-1)
		for {
			old := peak.Load()
			if now <= old || peak.CompareAndSwap(old, now) {
				break
			}
		}
		if g := h.InFlight(); g > gaugePeak.Load() {
			gaugePeak.Store(g)
		}
		time.Sleep(5 * time.Millisecond)
		return real(password, salt, p, n)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			if _, err := h.Hash(context.Background(), testClient, "password1"); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := peak.Load(); got > limit {
		t.Fatalf("%d derivations ran at once, limit is %d", got, limit)
	}
	if got := peak.Load(); got < 2 {
		t.Fatalf("at most %d derivation ran at once; the test did not exercise concurrency", got)
	}
	if got := gaugePeak.Load(); got < 1 || got > limit {
		t.Fatalf("InFlight peaked at %d, want 1..%d", got, limit)
	}
	if h.InFlight() != 0 {
		t.Fatalf("InFlight = %d after all runs finished", h.InFlight())
	}
}

// TestCancelWhileWaiting fills the only slot and checks that a queued caller leaves when its
// context ends, without ever running the derivation.
func TestCancelWhileWaiting(t *testing.T) {
	h := NewHasher(config.Auth{Argon2MemoryKiB: 64, Argon2Iterations: 1, Argon2Parallelism: 1, MaxConcurrentHashes: 1})
	entered := make(chan struct{})
	release := make(chan struct{})
	var runs atomic.Int64
	real := h.derive
	h.derive = func(password, salt []byte, p params, n uint32) []byte {
		if runs.Add(1) == 1 {
			close(entered)
			<-release
		}
		return real(password, salt, p, n)
	}
	holder := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), testClient, "password1")
		holder <- err
	}()
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() {
		_, err := h.Verify(ctx, testClient, "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password")
		waiter <- err
	}()
	select {
	case err := <-waiter:
		t.Fatalf("Verify returned %v while the only slot was busy", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-waiter:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Verify after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Verify kept waiting after its context was cancelled")
	}

	deadlineCtx, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer stop()
	if _, err := h.Hash(deadlineCtx, testClient, "password1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hash with expiring context = %v, want context.DeadlineExceeded", err)
	}

	close(release)
	if err := <-holder; err != nil {
		t.Fatalf("slot holder: %v", err)
	}
	if got := runs.Load(); got != 1 {
		t.Fatalf("%d derivations ran, want only the slot holder's", got)
	}
	// The slot is free again and usable.
	if _, err := h.Hash(context.Background(), testClient, "password1"); err != nil {
		t.Fatalf("Hash after release: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  config.Auth
	}{
		{"owasp", config.Auth{}},
		{"fast", fastConfig()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := NewHasher(bc.cfg)
			hash, err := h.Hash(context.Background(), testClient, "correct horse battery staple")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := h.Verify(context.Background(), testClient, hash, "correct horse battery staple"); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// TestReserveHoldsThePlaceForTheNextCheck: with one slot and one place in the queue, A's
// reservation takes the slot and B's the queue place, so C is refused at once. B's hash then
// waits for the slot A's reservation holds, A's hash runs in it at once, and B's follows; a
// release after the check is a no-op, and nothing is left in the gate.
func TestReserveHoldsThePlaceForTheNextCheck(t *testing.T) {
	h := NewHasher(config.Auth{Argon2MemoryKiB: 64, Argon2Iterations: 1, Argon2Parallelism: 1, MaxConcurrentHashes: 1,
		MaxHashesPerClient: 1, MaxQueuedHashes: 1, MaxQueuedPerClient: 1})
	ctx := context.Background()
	releaseA, err := h.Reserve(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	releaseB, err := h.Reserve(ctx, "B")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reserve(ctx, "C"); !errors.Is(err, domain.ErrOverloaded) {
		t.Fatalf("Reserve(C) with the slot and the queue held = %v, want ErrOverloaded", err)
	}
	if h.InFlight() != 0 || h.Queued() != 1 {
		t.Fatalf("in flight %d, queued %d; want the slot held idle and B's place queued", h.InFlight(), h.Queued())
	}
	b := make(chan error, 1)
	go func() {
		_, err := h.Hash(ctx, "B", "password b")
		b <- err
	}()
	select {
	case err := <-b:
		t.Fatalf("B's hash ended (%v) while A's reservation held the only slot", err)
	case <-time.After(20 * time.Millisecond):
	}
	if _, err := h.Hash(ctx, "A", "password a"); err != nil {
		t.Fatalf("A's hash in its reserved slot: %v", err)
	}
	if err := <-b; err != nil {
		t.Fatalf("B's hash in its reserved place: %v", err)
	}
	releaseA()
	releaseB()
	g := h.gate
	if g.running != 0 || g.waiting() != 0 || len(g.clients) != 0 {
		t.Fatalf("after both checks and releases: running %d, waiting %d, clients %d", g.running, g.waiting(), len(g.clients))
	}
}
