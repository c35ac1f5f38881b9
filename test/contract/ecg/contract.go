// Package ecg is the contract of the ECG context's repository (ports/ecg): run on SQLite, MySQL
// and the in-memory fake, so they all behave the same.
package ecg

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	ecgport "github.com/acme/postsvc/ports/ecg"
	"github.com/acme/postsvc/test/contract"
)

// Backend is one implementation under test: the ECG store and the unit of work over the same
// storage, and a way to make and delete the users ECGs belong to (as the accounts context
// would: the ECG context only needs them to exist, and to go).
type Backend struct {
	UoW   ports.UnitOfWork
	Store ecgport.Store
	// NewUser stores a new user and returns its id.
	NewUser func(t *testing.T) identity.UserID
	// DeleteUser deletes a user's account, as the administrator's use case does (without
	// calling the ECG context: the storage's own cascade is under test).
	DeleteUser func(t *testing.T, id identity.UserID)
}

// ECGs is the ECG repository on the pool.
func (b Backend) ECGs() ecgport.Repository { return b.Store.ECGs(b.UoW.Pool()) }

// memBlocks is an upload's spool in memory. Each hands every block's data over in one buffer
// that it overwrites once the callee returns, as a spool reading from a file would: a
// repository that keeps the slice instead of copying it stores garbage.
type memBlocks struct{ blocks []ecg.Block }

func (m *memBlocks) Put(b ecg.Block) error {
	b.Data = slices.Clone(b.Data)
	m.blocks = append(m.blocks, b)
	return nil
}

func (m *memBlocks) Each(fn func(b ecg.Block) error) error {
	var buf []byte
	for _, b := range m.blocks {
		buf = append(buf[:0], b.Data...)
		b.Data = buf
		if err := fn(b); err != nil {
			return err
		}
		for i := range buf {
			buf[i] = 0xA5
		}
	}
	return nil
}

// bytes is the packed size of every block.
func (m *memBlocks) bytes() int {
	n := 0
	for _, b := range m.blocks {
		n += len(b.Data)
	}
	return n
}

// lead is one lead of a test ECG.
type lead struct {
	name    string
	samples []int32
}

// upload is a test ECG with the blocks its samples were packed into.
type upload struct {
	e      *ecg.ECG
	blocks *memBlocks
	leads  []lead
}

// testDate is a recording date with microseconds, which storage must keep exactly.
var testDate = time.Date(2025, 11, 3, 14, 15, 16, 123456000, time.UTC)

// makeECG builds an ECG of owner the way an upload does: each lead's samples go through
// ecg.NewSignalWriter into blocks, and the draft goes through ecg.New. An empty id sends none
// (the key becomes the id). Nothing is stored.
func makeECG(t testing.TB, owner identity.UserID, id string, leads ...lead) upload {
	t.Helper()
	if len(leads) == 0 {
		leads = []lead{{"I", []int32{1, -2, 3}}}
	}
	sink := &memBlocks{}
	date := testDate.Format(time.RFC3339Nano)
	d := ecg.Draft{ID: id, IDSent: id != "", Date: &date}
	var w *ecg.SignalWriter
	for i, l := range leads {
		w = ecg.NewSignalWriter(w, sink, i, func() string { return l.name })
		for _, s := range l.samples {
			contract.NoErr(t, "SignalWriter.Add", w.Add(int64(s)))
		}
		sig, err := w.Close()
		contract.NoErr(t, "SignalWriter.Close", err)
		name := l.name
		d.Leads = append(d.Leads, ecg.LeadDraft{Name: &name, Signal: sig, SignalSent: true})
	}
	e, err := ecg.New(ecg.Key(contract.NewID(t)), owner, d, time.Now())
	contract.NoErr(t, "ecg.New", err)
	return upload{e: e, blocks: sink, leads: leads}
}

// addECG builds and stores an ECG on the pool.
func addECG(t testing.TB, b Backend, owner identity.UserID, id string, leads ...lead) upload {
	t.Helper()
	u := makeECG(t, owner, id, leads...)
	contract.NoErr(t, "Add", b.ECGs().Add(t.Context(), u.e, u.blocks))
	return u
}

// walk returns n samples of a random walk with small steps (the common case, packed as
// varints), seeded so a failure can be replayed.
func walk(n int, seed uint64) []int32 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]int32, n)
	var v int32
	for i := range out {
		v += r.Int32N(81) - 40
		out[i] = v
	}
	return out
}

// wild returns n samples anywhere in the int32 range, the extremes included, which pack raw.
func wild(n int, seed uint64) []int32 {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make([]int32, n)
	for i := range out {
		out[i] = r.Int32() - r.Int32()
	}
	out[0], out[n-1] = math.MinInt32, math.MaxInt32
	return out
}

// readAll pages through an ECG's blocks with maxBytes, checking every page's contract (order,
// contiguity, budget, at least one block), and returns the blocks and the number of calls.
func readAll(t testing.TB, b Backend, key ecg.Key, maxBytes int) ([]ecg.Block, int) {
	t.Helper()
	var (
		all   []ecg.Block
		from  ecgport.BlockPos
		calls int
	)
	for {
		calls++
		if calls > 10000 {
			t.Fatalf("Blocks(maxBytes %d): paging does not end", maxBytes)
		}
		page, err := b.ECGs().Blocks(t.Context(), key, from, maxBytes)
		contract.NoErr(t, "Blocks", err)
		if len(page) == 0 {
			return all, calls
		}
		used := 0
		for _, blk := range page {
			used += len(blk.Data)
		}
		if len(page) > 1 && used > maxBytes {
			t.Fatalf("Blocks(from %+v, maxBytes %d): %d blocks of %d bytes", from, maxBytes, len(page), used)
		}
		all = append(all, page...)
		from = ecgport.After(page[len(page)-1])
	}
}

// assertBlocks checks that blocks are exactly the ones the upload put, in order, and that
// they unpack to the upload's samples.
func assertBlocks(t testing.TB, u upload, got []ecg.Block) {
	t.Helper()
	sameBlocks(t, u, got)
	samples := make([][]int32, len(u.leads))
	for _, blk := range got {
		var err error
		samples[blk.Lead], err = ecg.AppendUnpacked(samples[blk.Lead], blk.Data)
		contract.NoErr(t, fmt.Sprintf("unpack block %d/%d", blk.Lead, blk.Seq), err)
	}
	for i, l := range u.leads {
		if !slices.Equal(samples[i], l.samples) {
			t.Fatalf("lead %d: %d samples back, want %d, or they differ", i, len(samples[i]), len(l.samples))
		}
		if h := samplesHash(samples[i]); h != u.e.Leads()[i].Signal.Hash {
			t.Fatalf("lead %d: the samples back do not hash to the lead's hash", i)
		}
	}
}

// sameBlocks checks that blocks are exactly the ones the upload put, in order, byte for byte.
func sameBlocks(t testing.TB, u upload, got []ecg.Block) {
	t.Helper()
	want := u.blocks.blocks
	if len(got) != len(want) {
		t.Fatalf("%d blocks back, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Lead != w.Lead || g.Seq != w.Seq || g.Samples != w.Samples || string(g.Data) != string(w.Data) {
			t.Fatalf("block %d = {lead %d seq %d samples %d, %d bytes}, want {lead %d seq %d samples %d, %d bytes} with the same data",
				i, g.Lead, g.Seq, g.Samples, len(g.Data), w.Lead, w.Seq, w.Samples, len(w.Data))
		}
	}
}

// samplesHash is the hash ecg.Signal keeps: SHA-256 of the samples as little-endian int32s.
func samplesHash(samples []int32) [sha256.Size]byte {
	buf, err := binary.Append(make([]byte, 0, 4*len(samples)), binary.LittleEndian, samples)
	if err != nil {
		panic(err)
	}
	return sha256.Sum256(buf)
}

// assertSameECG compares everything storage keeps of an ECG.
func assertSameECG(t testing.TB, got, want *ecg.ECG) {
	t.Helper()
	if got.Key() != want.Key() || got.ID() != want.ID() || got.Owner() != want.Owner() {
		t.Fatalf("ECG {key %s id %q owner %s}, want {key %s id %q owner %s}", got.Key(), got.ID(), got.Owner(), want.Key(), want.ID(), want.Owner())
	}
	if !got.Date().Equal(want.Date()) || got.Date().Location() != time.UTC {
		t.Errorf("date = %s, want %s in UTC", got.Date().Format(time.RFC3339Nano), want.Date().Format(time.RFC3339Nano))
	}
	if !slices.Equal(got.Leads(), want.Leads()) {
		t.Errorf("leads = %+v, want %+v", got.Leads(), want.Leads())
	}
	if got.Content() != want.Content() || !got.SameContent(want) {
		t.Errorf("content hash changed")
	}
	if got.Status() != want.Status() || got.Failure() != want.Failure() {
		t.Errorf("status %s %q, want %s %q", got.Status(), got.Failure(), want.Status(), want.Failure())
	}
	contract.SameInstant(t, "created_at", got.CreatedAt(), want.CreatedAt())
	if want.AnalysedAt().IsZero() != got.AnalysedAt().IsZero() {
		t.Errorf("analysed_at = %s, want %s", got.AnalysedAt(), want.AnalysedAt())
	}
}

func keysOf(es []*ecg.ECG) []ecg.Key {
	out := make([]ecg.Key, len(es))
	for i, e := range es {
		out[i] = e.Key()
	}
	return out
}

// num makes a Number of a float, as the analyses do.
func num(t testing.TB, v float64) ecg.Number {
	t.Helper()
	n, err := ecg.Float(v)
	contract.NoErr(t, "ecg.Float", err)
	return n
}

// parsed makes a Number of a text, as storage reads it back.
func parsed(t testing.TB, text string) ecg.Number {
	t.Helper()
	n, err := ecg.ParseNumber(text)
	contract.NoErr(t, "ecg.ParseNumber", err)
	return n
}

// resultsText writes results in one canonical text, by analysis name, so that two sets of
// results compare whatever order a repository returns them in and whether a lead without
// measures comes back nil or empty.
func resultsText(rs []ecg.Result) string {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b ecg.Result) int {
		switch {
		case a.Analysis < b.Analysis:
			return -1
		case a.Analysis > b.Analysis:
			return 1
		}
		return 0
	})
	var out []byte
	for _, r := range rs {
		out = fmt.Appendf(out, "%s@%d:", r.Analysis, r.Version)
		for i, ms := range r.Leads {
			out = fmt.Appendf(out, " [%d]", i)
			for _, m := range ms {
				out = fmt.Appendf(out, " %q=%q", m.Name, m.Value.String())
			}
		}
		out = append(out, '\n')
	}
	return string(out)
}

func storedResults(t testing.TB, b Backend, key ecg.Key) []ecg.Result {
	t.Helper()
	rs, err := b.ECGs().Results(t.Context(), key)
	contract.NoErr(t, "Results", err)
	return rs
}

func blocksLeft(t testing.TB, b Backend, key ecg.Key) int {
	t.Helper()
	page, err := b.ECGs().Blocks(t.Context(), key, ecgport.BlockPos{}, math.MaxInt32)
	contract.NoErr(t, "Blocks", err)
	return len(page)
}
