package ecggorm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	ecgport "github.com/acme/postsvc/ports/ecg"
	"github.com/acme/postsvc/test/testdb"
)

// storedRow is a row of ecg_blocks as the tests read it.
type storedRow struct {
	LeadNo, Seq, Samples, DataBytes int
	Data                            []byte
}

func storedRows(t *testing.T, db *gorm.DB, key ecg.Key) []storedRow {
	t.Helper()
	var rows []storedRow
	if err := db.Raw("SELECT lead_no, seq, samples, data_bytes, data FROM ecg_blocks WHERE ecg_key = ? ORDER BY lead_no, seq", string(key)).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

// packedWalk packs n samples of a random walk: small deltas, as an ECG's.
func packedWalk(r *rand.Rand, n int) ecg.Block {
	samples := make([]int32, n)
	for i := 1; i < n; i++ {
		samples[i] = samples[i-1] + int32(r.IntN(41)) - 20 //nolint:gosec // G115: small
	}
	return ecg.Block{Samples: n, Data: ecg.AppendPacked(nil, samples)}
}

func addBlocks(t *testing.T, db *gorm.DB, key ecg.Key, owner identity.UserID, blocks blockList) {
	t.Helper()
	date := "2025-01-02T03:04:05Z"
	d := ecg.Draft{Date: &date}
	counts := map[int]int{}
	for _, b := range blocks {
		counts[b.Lead] += b.Samples
	}
	for i := range len(counts) {
		name := fmt.Sprintf("L%d", i)
		d.Leads = append(d.Leads, ecg.LeadDraft{Name: &name, Signal: ecg.Signal{Samples: counts[i], TextBytes: 1}, SignalSent: true})
	}
	e, err := ecg.New(key, owner, d, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := NewStore().ECGs(gormstore.NewUnitOfWork(db).Pool()).Add(t.Context(), e, blocks); err != nil {
		t.Fatal(err)
	}
}

func newOwner(t *testing.T, db *gorm.DB) identity.UserID {
	t.Helper()
	const owner = identity.UserID("01900000-0000-7000-8000-0000000000b2")
	now := gormstore.DBTime(time.Now())
	if err := db.Exec("INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES (?, 'b@x.io', 'h', 'user', ?, ?)",
		string(owner), now, now).Error; err != nil {
		t.Fatal(err)
	}
	return owner
}

// packedBytes is the blocks' packed data, as a read's budget counts it.
func packedBytes(blocks []ecg.Block) int {
	n := 0
	for _, b := range blocks {
		n += len(b.Data)
	}
	return n
}

func sameBlocks(t *testing.T, what string, got, want []ecg.Block) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d blocks, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Lead != w.Lead || g.Seq != w.Seq || g.Samples != w.Samples || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("%s: block %d is %d/%d of %d samples and %d bytes, want %d/%d of %d and %d", what, i,
				g.Lead, g.Seq, g.Samples, len(g.Data), w.Lead, w.Seq, w.Samples, len(w.Data))
		}
	}
}

// TestATypicalECGIsOneRow: the 12 leads of 5,000 samples of a typical ECG are one row, a
// bundle, and come back block for block through Blocks and BlocksOf.
func TestATypicalECGIsOneRow(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		owner := newOwner(t, db)
		r := rand.New(rand.NewPCG(3, 4))
		var blocks blockList
		for lead := range 12 {
			b := packedWalk(r, 5000)
			b.Lead = lead
			blocks = append(blocks, b)
		}
		const key = ecg.Key("01900000-0000-7000-8000-0000000000c1")
		addBlocks(t, db, key, owner, blocks)
		rows := storedRows(t, db, key)
		if len(rows) != 1 {
			t.Fatalf("%d rows for 12 leads of 5000 samples, want 1", len(rows))
		}
		if r := rows[0]; r.LeadNo != 11 || r.Seq != 0 || r.Samples != 60000 || r.DataBytes != packedBytes(blocks) || r.Data[0] != bundleTag {
			t.Fatalf("the row is %d/%d of %d samples, %d bytes of data counted of %d, starting 0x%02x; want 11/0, 60000, %d, a bundle",
				r.LeadNo, r.Seq, r.Samples, r.DataBytes, len(r.Data), r.Data[0], packedBytes(blocks))
		}
		repo := NewStore().ECGs(gormstore.NewUnitOfWork(db).Pool())
		page, err := repo.Blocks(t.Context(), key, ecgport.BlockPos{}, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		sameBlocks(t, "Blocks", page, blocks)
		all, err := repo.BlocksOf(t.Context(), []ecg.Key{key})
		if err != nil {
			t.Fatal(err)
		}
		sameBlocks(t, "BlocksOf", all[key], blocks)
		// From inside the bundle, within a budget.
		page, err = repo.Blocks(t.Context(), key, ecgport.BlockPos{Lead: 5}, len(blocks[5].Data)+len(blocks[6].Data))
		if err != nil {
			t.Fatal(err)
		}
		sameBlocks(t, "Blocks from lead 5", page, blocks[5:7])
	})
}

// TestLargeBlocksKeepRowsOfTheirOwn: full blocks are rows of their own, and no row passes the
// size of the largest block; the small blocks between them share rows.
func TestLargeBlocksKeepRowsOfTheirOwn(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		owner := newOwner(t, db)
		r := rand.New(rand.NewPCG(5, 6))
		var blocks blockList
		for lead := range 3 {
			for seq := range 3 {
				n := ecg.MaxBlockSamples
				if seq == 2 {
					n = 700 // the lead's short last block
				}
				b := packedWalk(r, n)
				b.Lead, b.Seq = lead, seq
				blocks = append(blocks, b)
			}
		}
		const key = ecg.Key("01900000-0000-7000-8000-0000000000c2")
		addBlocks(t, db, key, owner, blocks)
		rows := storedRows(t, db, key)
		var got []ecg.Block
		for _, row := range rows {
			if row.DataBytes > ecg.MaxBlockBytes {
				t.Errorf("row %d/%d holds %d bytes, more than a block's %d", row.LeadNo, row.Seq, row.DataBytes, ecg.MaxBlockBytes)
			}
			got = appendRowBlocks(got, row.LeadNo, row.Seq, row.Samples, row.Data)
		}
		sameBlocks(t, "rows", got, blocks)
		if len(rows) >= len(blocks) {
			t.Errorf("%d rows for %d blocks: the short blocks do not share rows", len(rows), len(blocks))
		}
	})
}

// TestPagesOfTinyBlocksAreExact: a page holds exactly the longest run of blocks that fits the
// budget even when bundles hold so many tiny blocks that their frame headers outweigh the
// data: the budget counts the blocks' data, so the read does not leave out a row the page
// needs.
func TestPagesOfTinyBlocksAreExact(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		owner := newOwner(t, db)
		r := rand.New(rand.NewPCG(11, 12))
		var blocks blockList
		for seq := range 90_000 { // one sample each: 3 bytes of data, about as much header
			b := packedWalk(r, 1)
			b.Seq = seq
			blocks = append(blocks, b)
		}
		const key = ecg.Key("01900000-0000-7000-8000-0000000000c4")
		addBlocks(t, db, key, owner, blocks)
		rows := storedRows(t, db, key)
		if len(rows) < 4 {
			t.Fatalf("%d rows for %d tiny blocks, want at least 4 bundles", len(rows), len(blocks))
		}
		// From the last block of the first row: that one block, all of the second row's, and
		// the third row's first block fit exactly.
		first := rows[0].Seq
		second := RowBlocks(rows[1].LeadNo, rows[1].Seq, rows[1].Samples, rows[1].Data)
		want := blocks[first : first+1+len(second)+1]
		repo := NewStore().ECGs(gormstore.NewUnitOfWork(db).Pool())
		page, err := repo.Blocks(t.Context(), key, ecgport.BlockPos{Seq: first}, packedBytes(want))
		if err != nil {
			t.Fatal(err)
		}
		sameBlocks(t, "Blocks", page, want)
	})
}

// TestRowsOfSingleBlocksStillRead: rows written one block each, as before bundles, read as
// they always did.
func TestRowsOfSingleBlocksStillRead(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		owner := newOwner(t, db)
		r := rand.New(rand.NewPCG(7, 8))
		const key = ecg.Key("01900000-0000-7000-8000-0000000000c3")
		var blocks blockList
		for lead := range 3 {
			b := packedWalk(r, 300)
			b.Lead = lead
			blocks = append(blocks, b)
		}
		addBlocks(t, db, key, owner, blocks[:1]) // the ECG row, and one block
		if err := db.Exec("DELETE FROM ecg_blocks WHERE ecg_key = ?", string(key)).Error; err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if err := db.Exec("INSERT INTO ecg_blocks (ecg_key, lead_no, seq, owner_id, samples, data_bytes, data) VALUES (?,?,?,?,?,?,?)",
				string(key), b.Lead, b.Seq, string(owner), b.Samples, len(b.Data), b.Data).Error; err != nil {
				t.Fatal(err)
			}
		}
		repo := NewStore().ECGs(gormstore.NewUnitOfWork(db).Pool())
		page, err := repo.Blocks(t.Context(), key, ecgport.BlockPos{Lead: 1}, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		sameBlocks(t, "Blocks", page, blocks[1:])
		all, err := repo.BlocksOf(t.Context(), []ecg.Key{key})
		if err != nil {
			t.Fatal(err)
		}
		sameBlocks(t, "BlocksOf", all[key], blocks)
	})
}

// TestABrokenBundleReadsAsCorrupt: a bundle that does not parse, or disagrees with its row,
// comes back as one block that the domain refuses to unpack, never as blocks read wrong.
func TestABrokenBundleReadsAsCorrupt(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	a, b := packedWalk(r, 50), packedWalk(r, 60)
	a.Lead, b.Lead = 0, 1
	frame := func(dst []byte, blk ecg.Block) []byte {
		return append(appendFrameHeader(dst, blk), blk.Data...)
	}
	good := frame(frame([]byte{bundleTag}, a), b)
	if got := appendRowBlocks(nil, 1, 0, 110, good); len(got) != 2 {
		t.Fatalf("the good bundle read as %d blocks", len(got))
	}
	cases := map[string]struct {
		lead, seq, samples int
		data               []byte
	}{
		"cut short":              {1, 0, 110, good[:len(good)-1]},
		"cut in a header":        {1, 0, 110, good[:3]},
		"only the tag":           {1, 0, 0, []byte{bundleTag}},
		"ends at another block":  {2, 0, 110, good},
		"samples disagree":       {1, 0, 111, good},
		"blocks out of order":    {0, 0, 110, frame(frame([]byte{bundleTag}, b), a)},
		"one block twice":        {0, 0, 100, frame(frame([]byte{bundleTag}, a), a)},
		"a length past the data": {1, 0, 110, append([]byte{bundleTag, 0, 0, 50, 0xff, 0xff, 0x03}, a.Data...)},
	}
	for name, c := range cases {
		got := appendRowBlocks(nil, c.lead, c.seq, c.samples, c.data)
		if len(got) != 1 || !bytes.Equal(got[0].Data, c.data) {
			t.Errorf("%s: read as %d blocks, want the row's data as one", name, len(got))
			continue
		}
		if _, err := ecg.AppendUnpacked(nil, got[0].Data); !errors.Is(err, ecg.ErrCorruptBlock) {
			t.Errorf("%s: unpacking gives %v, want ErrCorruptBlock", name, err)
		}
	}
	// The domain's blocks never start like a bundle.
	for _, n := range []int{1, 100, ecg.MaxBlockSamples} {
		if blk := packedWalk(r, n); blk.Data[0] == bundleTag {
			t.Fatalf("a packed block of %d samples starts with the bundle tag", n)
		}
	}
}

// RowBlocks is appendRowBlocks into a new slice.
func RowBlocks(lead, seq, samples int, data []byte) []ecg.Block {
	return appendRowBlocks(nil, lead, seq, samples, data)
}
