package ecggorm

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/test/testdb"
)

// ecgDataBytes is the data_bytes of the ECG's row.
func ecgDataBytes(t *testing.T, db *gorm.DB, key ecg.Key) int64 {
	t.Helper()
	var n []int64
	if err := db.Raw("SELECT data_bytes FROM ecgs WHERE ecg_key = ?", string(key)).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if len(n) != 1 {
		t.Fatalf("ECG %s: %d rows", key, len(n))
	}
	return n[0]
}

// TestDataBytesMigrationMeasuresStoredECGs: Add records on the ECG's row its blocks' packed
// bytes (a bundle's without its frame headers; large blocks in rows of their own), and
// migration 15 gives the ECGs stored before it the same value from their blocks: the ECGs
// are stored, the migration reverted (the column goes) and applied again.
func TestDataBytesMigrationMeasuresStoredECGs(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		owner := newOwner(t, db)
		r := rand.New(rand.NewPCG(5, 6))
		var typical, large blockList
		for lead := range 12 {
			b := packedWalk(r, 5000)
			b.Lead = lead
			typical = append(typical, b)
		}
		for seq := range 3 {
			b := packedWalk(r, ecg.MaxBlockSamples)
			b.Seq = seq
			large = append(large, b)
		}
		large = append(large, ecg.Block{Lead: 1, Samples: 3, Data: ecg.AppendPacked(nil, []int32{1, -5, 9})})
		keys := []ecg.Key{"01900000-0000-7000-8000-0000000000d1", "01900000-0000-7000-8000-0000000000d2"}
		addBlocks(t, db, keys[0], owner, typical)
		addBlocks(t, db, keys[1], owner, large)
		want := []int64{int64(packedBytes(typical)), int64(packedBytes(large))}
		check := func(when string) {
			t.Helper()
			for i, key := range keys {
				if n := ecgDataBytes(t, db, key); n != want[i] {
					t.Fatalf("%s: ECG %d has data_bytes %d, want %d (its blocks' packed data)", when, i, n, want[i])
				}
			}
			used, err := NewStore().ECGs(gormstore.NewUnitOfWork(db).Pool()).LockOwner(ctx, owner)
			if err != nil || used != want[0]+want[1] {
				t.Fatalf("%s: LockOwner = %d, %v; want %d", when, used, err, want[0]+want[1])
			}
		}
		check("after Add")
		driver := db.Name()
		testdb.MigrateDownTo(t, db, driver, 14)
		if db.Migrator().HasColumn("ecgs", "data_bytes") {
			t.Fatal("ecgs.data_bytes left after migration 15 was reverted")
		}
		testdb.Migrate(t, db, driver)
		check("after migration 15")
	})
}

// sizedList is a blockList that declares its packed size, as an upload's spool does: Add
// then inserts the ECG's row with it.
type sizedList struct {
	blockList
	declared int64
}

func (l sizedList) Bytes() int64 { return l.declared }

// TestDataBytesIsWhatWasWritten: blocks that declare their size have the ECG's row inserted
// with it; a declared size that differs from what was written (or none) is corrected from
// the blocks the writer counted.
func TestDataBytesIsWhatWasWritten(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		owner := newOwner(t, db)
		r := rand.New(rand.NewPCG(7, 8))
		var blocks blockList
		for lead := range 3 {
			b := packedWalk(r, 4000)
			b.Lead = lead
			blocks = append(blocks, b)
		}
		want := int64(packedBytes(blocks))
		for i, declared := range []int64{want, want - 1, want + 1000} {
			key := ecg.Key(fmt.Sprintf("01900000-0000-7000-8000-0000000000e%d", i))
			date := "2025-01-02T03:04:05Z"
			d := ecg.Draft{Date: &date}
			for _, b := range blocks {
				name := fmt.Sprintf("L%d", b.Lead)
				d.Leads = append(d.Leads, ecg.LeadDraft{Name: &name, Signal: ecg.Signal{Samples: b.Samples, TextBytes: 1}, SignalSent: true})
			}
			e, err := ecg.New(key, owner, d, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			sized := sizedList{blockList: blocks, declared: declared}
			if err := NewStore().ECGs(gormstore.NewUnitOfWork(db).Pool()).Add(t.Context(), e, sized); err != nil {
				t.Fatal(err)
			}
			if n := ecgDataBytes(t, db, key); n != want {
				t.Fatalf("blocks of %d bytes declaring %d: data_bytes %d, want %d", want, declared, n, want)
			}
		}
	})
}
