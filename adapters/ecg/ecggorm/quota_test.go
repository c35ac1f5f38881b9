package ecggorm

import (
	"math/rand/v2"
	"testing"

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
