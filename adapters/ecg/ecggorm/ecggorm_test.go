package ecggorm_test

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/ecg/ecggorm"
	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	ecgport "github.com/acme/postsvc/ports/ecg"
	"github.com/acme/postsvc/test/testdb"
)

// The behaviour of the repository is specified by the contract suite (test/contract/ecg), run
// on both databases. These tests check what the contract cannot see: how many statements the
// repository runs and how large they are, and the migration's Down.

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// statement is one statement a test database ran.
type statement struct {
	sql   string
	rows  int64
	blobs int // []byte arguments
	bytes int // their total length
}

// recorder records every statement run through GORM on one database.
type recorder struct {
	mu    sync.Mutex
	stmts []statement
}

func watch(t *testing.T, db *gorm.DB) *recorder {
	t.Helper()
	r := &recorder{}
	fn := func(tx *gorm.DB) {
		s := statement{sql: tx.Statement.SQL.String(), rows: tx.RowsAffected}
		for _, v := range tx.Statement.Vars {
			if b, ok := v.([]byte); ok {
				s.blobs++
				s.bytes += len(b)
			}
		}
		r.mu.Lock()
		r.stmts = append(r.stmts, s)
		r.mu.Unlock()
	}
	cb := db.Callback()
	for _, err := range []error{
		cb.Create().After("gorm:create").Register("ecggorm_test:create", fn),
		cb.Query().After("gorm:query").Register("ecggorm_test:query", fn),
		cb.Row().After("gorm:row").Register("ecggorm_test:row", fn),
		cb.Raw().After("gorm:raw").Register("ecggorm_test:raw", fn),
		cb.Update().After("gorm:update").Register("ecggorm_test:update", fn),
		cb.Delete().After("gorm:delete").Register("ecggorm_test:delete", fn),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *recorder) take() []statement {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.stmts
	r.stmts = nil
	return out
}

// newUser stores the row of a user that ECGs can belong to. The accounts context's store is
// out of this context's reach (test/arch), so the row is written as its migration defines it.
func newUser(t *testing.T, db *gorm.DB) identity.UserID {
	t.Helper()
	id := identity.UserID("01900000-0000-7000-8000-000000000001")
	now := gormstore.DBTime(time.Now())
	err := db.WithContext(t.Context()).Exec("INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
		string(id), "ecg@x.io", "hash", string(identity.RoleUser), now, now).Error
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newECG makes an ECG of owner whose leads are described as holding samples each; the blocks
// are the test's business.
func newECG(t *testing.T, owner identity.UserID, leads int) *ecg.ECG {
	t.Helper()
	date := "2025-01-02T03:04:05Z"
	d := ecg.Draft{ID: "big", IDSent: true, Date: &date}
	for i := range leads {
		name := string(rune('A' + i))
		d.Leads = append(d.Leads, ecg.LeadDraft{Name: &name, Signal: ecg.Signal{Samples: ecg.MaxSamples, TextBytes: 1}, SignalSent: true})
	}
	e, err := ecg.New("01900000-0000-7000-8000-0000000000e1", owner, d, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// generated hands out blocks made on the fly in one reused buffer, as a spool reading a file
// does, and checks at each block, by reading the table in the upload's own transaction, that
// the repository has written what it received before: it must not hold more than one batch.
// Rows and bytes that appear between two blocks are one insert (a block's put writes at most
// one batch), whichever way the statement travels (the inserts run prepared, outside GORM's
// callbacks).
type generated struct {
	t       *testing.T
	stored  func() (rows, blocks, bytes int64) // what the table holds of the ECG, in the transaction; nil: not checked
	leads   int
	full    int   // full-size blocks per lead (65536 samples, raw: the largest a block gets)
	small   int   // then tiny blocks per lead
	written int64 // blocks
	rows    int64
	bytes   int64
	inserts []statement
	sizes   []int // of every block given
}

// observe records what was written since the last call as one insert; without stored it
// checks nothing.
func (g *generated) observe() {
	if g.stored == nil {
		return
	}
	rows, blocks, bytes := g.stored()
	if rows > g.rows {
		g.inserts = append(g.inserts, statement{rows: rows - g.rows, bytes: int(bytes - g.bytes)})
	}
	g.rows, g.written, g.bytes = rows, blocks, bytes
}

func (g *generated) Each(fn func(b ecg.Block) error) error {
	r := rand.New(rand.NewPCG(1, 2))
	samples := make([]int32, ecg.MaxBlockSamples)
	var buf []byte
	for lead := range g.leads {
		for seq := range g.full + g.small {
			n := ecg.MaxBlockSamples
			if seq >= g.full {
				n = 3
			}
			for i := range samples[:n] {
				samples[i] = int32(r.Uint32())
			}
			buf = ecg.AppendPacked(buf[:0], samples[:n])
			g.observe()
			// At most one batch is pending: at most 1 MiB (and 100 rows, checked per insert;
			// small blocks share rows, so many more blocks may wait).
			pending := 0
			for _, n := range g.sizes[g.written:] {
				pending += n
			}
			if pending > 1<<20 {
				g.t.Fatalf("before block %d/%d: %d blocks of %d bytes received but not written", lead, seq, len(g.sizes)-int(g.written), pending)
			}
			g.sizes = append(g.sizes, len(buf))
			if err := fn(ecg.Block{Lead: lead, Seq: seq, Samples: n, Data: buf}); err != nil {
				return err
			}
			clear(buf)
		}
	}
	return nil
}

func TestAddWritesBlocksInBoundedBatches(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		owner := newUser(t, db)
		rec := watch(t, db)
		uow := gormstore.NewUnitOfWork(db)
		e := newECG(t, owner, 3)
		gen := &generated{t: t, leads: 3, full: 6, small: 120}
		err := uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
			txdb, err := gormstore.DB(tx)
			if err != nil {
				return err
			}
			gen.stored = func() (rows, blocks, bytes int64) {
				var got []struct {
					LeadNo, Seq, Samples int
					Data                 []byte
				}
				err := txdb.WithContext(ctx).Raw("SELECT lead_no, seq, samples, data FROM ecg_blocks WHERE ecg_key = ?",
					string(e.Key())).Scan(&got).Error
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range got {
					blocks += int64(ecggorm.BlocksInRow(r.LeadNo, r.Seq, r.Samples, r.Data))
					bytes += int64(len(r.Data))
				}
				return int64(len(got)), blocks, bytes
			}
			if err := ecggorm.NewStore().ECGs(tx).Add(ctx, e, gen); err != nil {
				return err
			}
			gen.observe() // the last batch
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		rec.take()
		for _, s := range gen.inserts {
			if s.bytes > 1<<20 || s.rows > 100 {
				t.Errorf("one insert wrote %d blocks of %d bytes, want at most 100 and 1 MiB", s.rows, s.bytes)
			}
		}
		if want := int64(3 * (6 + 120)); gen.written != want {
			t.Fatalf("%d blocks written, want %d", gen.written, want)
		}
		// 6 blocks of 256 KiB a lead go three at a time (a fourth would pass 1 MiB); the tiny
		// ones go by 100 or until the next large block.
		if n := len(gen.inserts); n > 3*(2+2)+2 {
			t.Errorf("%d inserts for 3 leads of 6 large and 120 tiny blocks: batches are not filled", n)
		}

		// Blocks reads each batch in one query, and cuts it to the budget.
		repo := ecggorm.NewStore().ECGs(uow.Pool())
		var (
			from  ecgport.BlockPos
			total int
		)
		for {
			page, err := repo.Blocks(ctx, e.Key(), from, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if stmts := rec.take(); len(stmts) != 1 {
				t.Fatalf("Blocks ran %d statements, want 1", len(stmts))
			}
			if len(page) == 0 {
				break
			}
			size := 0
			for _, b := range page {
				size += len(b.Data)
			}
			if size > 1<<20 {
				t.Fatalf("a page of %d bytes for a budget of 1 MiB", size)
			}
			if page[0].Samples == ecg.MaxBlockSamples && len(page) < 3 && page[len(page)-1].Samples == ecg.MaxBlockSamples {
				t.Errorf("page from %+v holds %d large blocks, 3 fit", from, len(page))
			}
			total += len(page)
			from = ecgport.After(page[len(page)-1])
		}
		if total != 3*(6+120) {
			t.Fatalf("read %d blocks back, want %d", total, 3*(6+120))
		}
	})
}

// TestMigrationDown reverts the ECG migration: its tables go, the others stay, and it applies
// again.
func TestMigrationDown(t *testing.T) {
	for _, backend := range testdb.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			ctx := t.Context()
			db := backend.Open(t)
			m := testdb.Migrator(t, db, backend.Name)
			tables := []string{"ecgs", "ecg_blocks", "ecg_results"}
			for {
				v, err := m.Version(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if v < 5 {
					t.Fatalf("version %d: migration 5 was not applied", v)
				}
				if v == 5 {
					break
				}
				if err := m.Down(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Down(ctx); err != nil {
				t.Fatal(err)
			}
			for _, table := range tables {
				if db.Migrator().HasTable(table) {
					t.Errorf("table %s left after Down", table)
				}
			}
			if !db.Migrator().HasTable("users") {
				t.Fatal("Down of the ECG migration dropped users")
			}
			if err := m.Up(ctx); err != nil {
				t.Fatal(err)
			}
			for _, table := range tables {
				if !db.Migrator().HasTable(table) {
					t.Errorf("table %s missing after Up", table)
				}
			}
			// The schema works after a round trip.
			owner := newUser(t, db)
			uow := gormstore.NewUnitOfWork(db)
			e := newECG(t, owner, 1)
			err := ecggorm.NewStore().ECGs(uow.Pool()).Add(ctx, e, &generated{t: t, leads: 1, full: 1})
			if err != nil {
				t.Fatal(err)
			}
			page, err := ecggorm.NewStore().ECGs(uow.Pool()).Blocks(ctx, e.Key(), ecgport.BlockPos{}, math.MaxInt32)
			if err != nil || len(page) != 1 {
				t.Fatalf("Blocks: %d, %v", len(page), err)
			}
		})
	}
}
