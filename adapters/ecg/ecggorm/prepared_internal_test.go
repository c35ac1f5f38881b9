package ecggorm

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	ecgport "github.com/acme/postsvc/ports/ecg"
	"github.com/acme/postsvc/test/testdb"
)

// blockList hands out fixed blocks.
type blockList []ecg.Block

func (l blockList) Each(fn func(b ecg.Block) error) error {
	for _, b := range l {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// TestBlocksAreInsertedPrepared checks that an upload's blocks go through the statement
// prepared for their row count (arguments in the binary protocol, not escaped into the SQL
// text), in the upload's unit of work, and that every byte comes back: the packed data holds
// each byte value, quotes, backslashes and NULs among them.
func TestBlocksAreInsertedPrepared(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		const owner = identity.UserID("01900000-0000-7000-8000-0000000000b1")
		now := gormstore.DBTime(time.Now())
		if err := db.Exec("INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES (?, 'p@x.io', 'h', 'user', ?, ?)",
			string(owner), now, now).Error; err != nil {
			t.Fatal(err)
		}
		// Deltas 0, 1, -1, 2, -2, ... zigzag to the one-byte varints 0 to 127: NUL, quotes,
		// backslash and ^Z (what MySQL's escaping rewrites) among them.
		samples := make([]int32, 128)
		for i := 1; i < len(samples); i++ {
			samples[i] = samples[i-1] + int32(i)/2*(1-2*int32(i%2))
		}
		packed := ecg.AppendPacked(nil, samples)
		for _, c := range []byte{0, '\'', '\\', '"', 0x1a} {
			if bytes.IndexByte(packed, c) < 0 {
				t.Fatalf("the packed test data holds no byte 0x%02x", c)
			}
		}
		repo := NewStore().ECGs(gormstore.NewUnitOfWork(db).Pool())
		uploads := 0
		add := func(n int) ecg.Key {
			t.Helper()
			date := "2025-01-02T03:04:05Z"
			d := ecg.Draft{Date: &date}
			var blocks blockList
			for i := range n {
				name := fmt.Sprintf("L%d", i)
				d.Leads = append(d.Leads, ecg.LeadDraft{Name: &name, Signal: ecg.Signal{Samples: len(samples), TextBytes: 1}, SignalSent: true})
				blocks = append(blocks, ecg.Block{Lead: i, Seq: 0, Samples: len(samples), Data: packed})
			}
			uploads++
			e, err := ecg.New(ecg.Key(fmt.Sprintf("01900000-0000-7000-8000-%012d", uploads)), owner, d, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := repo.Add(t.Context(), e, blocks); err != nil {
				t.Fatal(err)
			}
			return e.Key()
		}
		// The 12 small blocks travel as one row, a bundle (bundle.go).
		const leads = 12
		add(leads)
		// The first use, inside a transaction, runs unprepared and prepares beside it.
		for deadline := time.Now().Add(10 * time.Second); gormstore.PreparedFor(db, blockInsertSQL[1]) == nil; {
			if time.Now().After(deadline) {
				t.Fatal("the one-row insert was never prepared")
			}
			time.Sleep(5 * time.Millisecond)
		}
		key := add(leads)
		page, err := repo.Blocks(t.Context(), key, ecgport.BlockPos{}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != leads {
			t.Fatalf("%d blocks read back, want %d", len(page), leads)
		}
		for _, b := range page {
			if !bytes.Equal(b.Data, packed) {
				t.Fatalf("lead %d: %d bytes read back differ from the %d written", b.Lead, len(b.Data), len(packed))
			}
		}
	})
}
