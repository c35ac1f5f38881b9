package ecggorm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// Bounds of one multi-row INSERT of blocks: Add writes an upload's blocks in batches as the
// spool hands them over, so neither the statement nor the memory it takes grows with the
// upload (up to 64 MiB). A block takes at most ecg.MaxBlockBytes (256 KiB), so a batch holds
// about 1 MiB of data; the row bound matters only for many small blocks.
const (
	maxBatchBytes = 1 << 20
	maxBatchRows  = 100
)

// repo implements ecg.Repository (ports/ecg) on one scope: the pool (pool set) or a
// transaction.
type repo struct {
	db   *gorm.DB
	pool bool
}

var _ ecgport.Repository = repo{}

// atomic runs fn in one transaction: the scope's own inside a unit of work, or one of its own
// on the pool (through the kernel's unit of work, which retries deadlock victims and reports
// a transaction cut short by its context as a timeout). fn may then run more than once.
func (r repo) atomic(ctx context.Context, fn func(db *gorm.DB) error) error {
	if !r.pool {
		return fn(r.db.WithContext(ctx))
	}
	return gormstore.NewUnitOfWork(r.db).Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		db, err := gormstore.DB(tx)
		if err != nil {
			return err
		}
		return fn(db.WithContext(ctx))
	})
}

// Add inserts the ECG's row first, so that a duplicate id or an unknown owner fails before any
// block is written, then its blocks in batches (blockWriter). The row's data_bytes is the
// blocks' packed bytes that the writer counted: blocks that know their size (an upload's
// spool, ecgport.Spool.Bytes) have it inserted with the row, and only when they do not, or
// when what was written differs, is it recorded after the blocks (one update by primary key
// of a row the transaction already holds), so the row's size is what was stored, whoever
// built e and blocks. On the pool it is one transaction: all or nothing.
func (r repo) Add(ctx context.Context, e *ecg.ECG, blocks ecg.Blocks) error {
	row, err := toECGRow(e)
	if err != nil {
		return err
	}
	declared := int64(-1)
	if sized, ok := blocks.(interface{ Bytes() int64 }); ok {
		declared = sized.Bytes()
		row.DataBytes = declared
	}
	return r.atomic(ctx, func(db *gorm.DB) error {
		err := db.Create(&row).Error
		switch {
		case errors.Is(err, gorm.ErrForeignKeyViolated):
			// The owner was deleted between authentication and this write.
			return fmt.Errorf("ecggorm: ECG owner %s: %w", e.Owner(), identity.ErrUnknownUser)
		case errors.Is(err, gorm.ErrDuplicatedKey):
			// The unique index on (owner_id, ecg_id) decides, never a prior lookup, so of
			// two concurrent uploads of one id exactly one wins. Keys are fresh UUIDv7s, so
			// the id is the only unique key a new ECG can realistically collide on.
			return fmt.Errorf("ecggorm: ECG %q of %s: %w", e.ID(), e.Owner(), ecgport.ErrDuplicate)
		case err != nil:
			return gormstore.MapErr(err)
		}
		buf := batchBufs.Get().(*[]byte) //nolint:forcetypeassert // the pool holds nothing else
		defer batchBufs.Put(buf)
		w := blockWriter{db: db, key: row.Key, owner: row.OwnerID, buf: (*buf)[:0]}
		if err := blocks.Each(w.put); err != nil {
			return err
		}
		if err := w.flush(); err != nil {
			return err
		}
		if w.total == declared {
			return nil
		}
		return gormstore.MapErr(db.Exec("UPDATE ecgs SET data_bytes = ? WHERE ecg_key = ?", w.total, row.Key).Error)
	})
}

// LockOwner locks the owner's users row (on MySQL, in a transaction): the lock that every
// other write of the user takes first, and that the foreign key check of an ECG insert waits
// for; then it sums the data_bytes of the owner's ECGs, from the owner index alone
// (idx_ecgs_owner_key_bytes). SQLite needs no row lock: its write transactions begin
// IMMEDIATE and run one at a time.
//
// On MySQL the sum is a consistent read, and InnoDB's REPEATABLE READ fixes a transaction's
// snapshot at its first consistent read: LockOwner must come before any other read of the
// transaction (as it does in the upload), so that the sum, taken once the lock is granted,
// sees every upload committed before. A locking read of the sum would not depend on that, but
// it would take gap locks on the owner index that deadlock the uploads of two owners whose ids
// are neighbours (as media's quota found).
//
// On the pool there is no transaction to hold a lock: the owner's row and the sum are merely
// read, in one statement, so an upload beginning does not wait behind another of the owner's
// uploads committing (which holds the row's lock).
func (r repo) LockOwner(ctx context.Context, owner identity.UserID) (int64, error) {
	db := r.db.WithContext(ctx)
	if r.pool {
		var used []int64
		err := db.Raw("SELECT (SELECT COALESCE(SUM(data_bytes), 0) FROM ecgs WHERE owner_id = u.id) FROM users u WHERE u.id = ?",
			string(owner)).Scan(&used).Error
		if err != nil {
			return 0, gormstore.MapErr(err)
		}
		if len(used) == 0 {
			return 0, fmt.Errorf("ecggorm: ECG owner %s: %w", owner, identity.ErrUnknownUser)
		}
		return used[0], nil
	}
	q := "SELECT id FROM users WHERE id = ?"
	if gormstore.IsMySQL(db) {
		q += " FOR UPDATE"
	}
	var ids []string
	if err := db.Raw(q, string(owner)).Scan(&ids).Error; err != nil {
		return 0, gormstore.MapErr(err)
	}
	if len(ids) == 0 {
		return 0, fmt.Errorf("ecggorm: ECG owner %s: %w", owner, identity.ErrUnknownUser)
	}
	var used int64
	if err := db.Raw("SELECT COALESCE(SUM(data_bytes), 0) FROM ecgs WHERE owner_id = ?", string(owner)).Scan(&used).Error; err != nil {
		return 0, gormstore.MapErr(err)
	}
	return used, nil
}

// batchBufs holds the data buffers of blockWriters, each big enough for a whole batch (a
// batch ends before its data passes maxBatchBytes, and a block adds at most ecg.MaxBlockBytes),
// so a 64 MiB upload reuses one buffer instead of growing a new one per upload: with 64 such
// uploads at once that churn alone kept the server's peak RSS tens of MiB higher.
var batchBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, maxBatchBytes+ecg.MaxBlockBytes)
	return &b
}}

// blockWriter collects blocks into rows (bundle.go: consecutive blocks share a row up to
// maxBundleBytes), and rows into multi-row INSERTs of at most maxBatchBytes of data and
// maxBatchRows rows, writing each batch as soon as the next block would not fit. The blocks'
// data is copied (the caller reuses it) into one buffer that every batch reuses, each bundle's
// frames written in place.
type blockWriter struct {
	db         *gorm.DB
	key, owner string
	rows       []blockRow
	buf        []byte
	args       []any
	bundle     openBundle
	// total is the packed data of every block put, as ecgs.data_bytes records it.
	total int64
}

// openBundle is the row being filled: where its data starts in the writer's buffer, where its
// first block's data starts (the row's whole data, should no other block join it), and what
// it holds so far.
type openBundle struct {
	open      bool
	start     int
	firstData int
	blocks    int
	samples   int
	dataBytes int       // the blocks' packed data, frame headers not counted
	last      ecg.Block // position only
}

// blockInsertSQL[n] inserts n blocks. The batches run as prepared statements (one per row
// count, and an upload's batches have a few counts at most): their arguments then travel in
// MySQL's binary protocol. Interpolated into the statement's text, as the service's DSN has
// the driver do for other statements, every byte of the packed samples was escaped by the
// driver and unescaped again by the server's SQL lexer, which took 9 % of the server's CPU
// and over a tenth of MariaDB's under paced ECG uploads.
var blockInsertSQL = func() (texts [maxBatchRows + 1]string) {
	const head = "INSERT INTO ecg_blocks (ecg_key, lead_no, seq, owner_id, samples, data_bytes, data) VALUES "
	var b strings.Builder
	for n := 1; n <= maxBatchRows; n++ {
		b.Reset()
		b.WriteString(head)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?)")
		}
		texts[n] = b.String()
	}
	return texts
}()

func (w *blockWriter) put(b ecg.Block) error {
	var head [frameHeaderMax]byte
	frame := appendFrameHeader(head[:0], b)
	size := len(frame) + len(b.Data)
	if w.bundle.open && len(w.buf)-w.bundle.start+size > maxBundleBytes {
		w.closeBundle()
	}
	// A bundle is opened only with room for its row in the batch, and the batch is written
	// before its data would pass maxBatchBytes (the bundle's tag byte included).
	if (w.bundle.open || len(w.rows) > 0) && len(w.buf)+size+1 > maxBatchBytes {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if !w.bundle.open {
		if len(w.rows) == maxBatchRows {
			if err := w.flush(); err != nil {
				return err
			}
		}
		w.bundle = openBundle{open: true, start: len(w.buf)}
		w.buf = append(w.buf, bundleTag)
		w.bundle.firstData = len(w.buf) + len(frame)
	}
	// Rows of this batch may point into an older array if append grows buf; that array stays
	// valid until the batch is written, and the grown one is reused afterwards.
	w.buf = append(w.buf, frame...)
	w.buf = append(w.buf, b.Data...)
	w.bundle.blocks++
	w.bundle.samples += b.Samples
	w.bundle.dataBytes += len(b.Data)
	w.total += int64(len(b.Data))
	w.bundle.last = ecg.Block{Lead: b.Lead, Seq: b.Seq}
	return nil
}

// closeBundle ends the open bundle as a row: the bundle itself when it holds several blocks,
// the one block's packed data alone otherwise.
func (w *blockWriter) closeBundle() {
	if !w.bundle.open {
		return
	}
	data := w.buf[w.bundle.start:len(w.buf):len(w.buf)]
	if w.bundle.blocks == 1 {
		data = w.buf[w.bundle.firstData:len(w.buf):len(w.buf)]
	}
	w.rows = append(w.rows, blockRow{
		Key: w.key, LeadNo: w.bundle.last.Lead, Seq: w.bundle.last.Seq, OwnerID: w.owner,
		Samples: w.bundle.samples, DataBytes: w.bundle.dataBytes, Data: data,
	})
	w.bundle = openBundle{}
}

func (w *blockWriter) flush() error {
	w.closeBundle()
	if len(w.rows) == 0 {
		return nil
	}
	args := w.args[:0]
	for _, r := range w.rows {
		args = append(args, r.Key, r.LeadNo, r.Seq, r.OwnerID, r.Samples, r.DataBytes, r.Data)
	}
	w.args = args
	_, err := gormstore.ExecPrepared(w.db.Statement.Context, w.db, blockInsertSQL[len(w.rows)], args...)
	clear(args)
	if err != nil {
		return gormstore.MapErr(err)
	}
	clear(w.rows)
	w.rows = w.rows[:0]
	w.buf = w.buf[:0]
	return nil
}

func (r repo) Get(ctx context.Context, owner identity.UserID, id ecg.ID) (*ecg.ECG, error) {
	// Anything else (from a URL) cannot name an ECG, and the ascii column could not even
	// compare it on MySQL.
	if !ecg.PlausibleID(string(id)) {
		return nil, ecg.ErrNotFound
	}
	return r.take(ctx, "owner_id = ? AND ecg_id = ?", string(owner), string(id))
}

func (r repo) ByKey(ctx context.Context, key ecg.Key) (*ecg.ECG, error) {
	return r.take(ctx, "ecg_key = ?", string(key))
}

func (r repo) take(ctx context.Context, cond string, args ...any) (*ecg.ECG, error) {
	var row ecgRow
	err := r.db.WithContext(ctx).Where(cond, args...).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ecg.ErrNotFound
	}
	if err != nil {
		return nil, gormstore.MapErr(err)
	}
	return row.toDomain()
}

// List reads one more row than the limit, which tells whether another page follows without a
// count query. The (owner_id, ecg_key) index serves the range and the order.
func (r repo) List(ctx context.Context, q ecgport.ListQuery) (ecgport.List, error) {
	out := ecgport.List{ECGs: []*ecg.ECG{}}
	if q.Limit <= 0 {
		return out, nil
	}
	tx := r.db.WithContext(ctx).Where("owner_id = ?", string(q.Owner))
	if q.Before != "" {
		tx = tx.Where("ecg_key < ?", string(q.Before))
	}
	var rows []ecgRow
	if err := tx.Order("ecg_key DESC").Limit(q.Limit + 1).Find(&rows).Error; err != nil {
		return ecgport.List{}, gormstore.MapErr(err)
	}
	if len(rows) > q.Limit {
		rows, out.More = rows[:q.Limit], true
	}
	for i := range rows {
		e, err := rows[i].toDomain()
		if err != nil {
			return ecgport.List{}, err
		}
		out.ECGs = append(out.ECGs, e)
	}
	return out, nil
}

// Delete removes the ECG's row, then its blocks and results, in one transaction. The row's
// delete decides: of two concurrent deletes, the one that finds no row left answers
// ErrNotFound.
func (r repo) Delete(ctx context.Context, owner identity.UserID, id ecg.ID) error {
	if !ecg.PlausibleID(string(id)) {
		return ecg.ErrNotFound
	}
	return r.atomic(ctx, func(db *gorm.DB) error {
		var keys []string
		err := db.Model(&ecgRow{}).Where("owner_id = ? AND ecg_id = ?", string(owner), string(id)).Limit(1).Pluck("ecg_key", &keys).Error
		if err != nil {
			return gormstore.MapErr(err)
		}
		if len(keys) == 0 {
			return ecg.ErrNotFound
		}
		key := keys[0]
		res := db.Where("ecg_key = ? AND owner_id = ?", key, string(owner)).Delete(&ecgRow{})
		if res.Error != nil {
			return gormstore.MapErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return ecg.ErrNotFound
		}
		if err := db.Where("ecg_key = ?", key).Delete(&blockRow{}).Error; err != nil {
			return gormstore.MapErr(err)
		}
		return gormstore.MapErr(db.Where("ecg_key = ?", key).Delete(&resultRow{}).Error)
	})
}

// DeleteByOwner deletes the owner's ECG rows only (the foreign key would cascade when the
// user goes; deleting here keeps the context correct on its own). Their blocks and results
// stay until PurgeOwner.
func (r repo) DeleteByOwner(ctx context.Context, owner identity.UserID) error {
	return gormstore.MapErr(r.db.WithContext(ctx).Where("owner_id = ?", string(owner)).Delete(&ecgRow{}).Error)
}

// PurgeOwner deletes up to limit orphaned blocks, then, within what is left of limit, orphaned
// results. Each is one statement, committed by itself on the pool.
func (r repo) PurgeOwner(ctx context.Context, owner identity.UserID, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	db := r.db.WithContext(ctx)
	n, err := purge(db, "ecg_blocks", "ecg_key, lead_no, seq", owner, limit)
	if err != nil || n >= limit {
		return n, err
	}
	m, err := purge(db, "ecg_results", "ecg_key, analysis", owner, limit-n)
	return n + m, err
}

// purge deletes up to limit rows of table that belong to owner and whose ECG row is gone.
// MySQL deletes with ORDER BY (its primary key order, which the owner index holds) and LIMIT;
// SQLite, built without DELETE ... LIMIT, deletes the rowids a limited select found.
func purge(db *gorm.DB, table, order string, owner identity.UserID, limit int) (int, error) {
	var q string
	if gormstore.IsMySQL(db) {
		q = "DELETE FROM " + table + " WHERE owner_id = ? AND NOT EXISTS (SELECT 1 FROM ecgs WHERE ecgs.ecg_key = " +
			table + ".ecg_key) ORDER BY " + order + " LIMIT ?"
	} else {
		q = "DELETE FROM " + table + " WHERE rowid IN (SELECT o.rowid FROM " + table + " o WHERE o.owner_id = ? " +
			"AND NOT EXISTS (SELECT 1 FROM ecgs WHERE ecgs.ecg_key = o.ecg_key) LIMIT ?)"
	}
	res := db.Exec(q, string(owner), limit)
	if res.Error != nil {
		return 0, gormstore.MapErr(res.Error)
	}
	return int(res.RowsAffected), nil
}

// blocksSQL reads one batch of an ECG's rows in one query. The derived table w sums the
// rows' sizes in reading order from their data_bytes column, without touching their data
// (InnoDB leaves large blobs off the row and fetches them only for queries that read them);
// the join then reads the data of the first row, whatever its size, and of the rows after it
// while the rows between the first and them fit the budget. data_bytes counts the blocks'
// packed data only, as the budget does (not a bundle's frame headers), so that is every row
// the page can need, and at most one more: the first row may be a bundle that starts before
// from, so Blocks cuts the page to the budget exactly once the blocks are out. An ECG has at most 16 leads of 16 blocks, so w is small. A row is keyed
// by the position of its last block (bundle.go), so the rows at or after from are exactly
// those that hold a block at or after from.
//
// The join order is forced (%s is MySQL's STRAIGHT_JOIN, or SQLite's CROSS JOIN, which SQLite
// never reorders): left to itself, MariaDB reads every block of the ECG, data included, and
// matches w afterwards, which made each call read the whole signal.
const blocksSQL = `SELECT b.lead_no, b.seq, b.samples, b.data
FROM (
    SELECT lead_no, seq,
        SUM(data_bytes) OVER (ORDER BY lead_no, seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            - data_bytes - FIRST_VALUE(data_bytes) OVER (ORDER BY lead_no, seq) AS between_bytes,
        ROW_NUMBER() OVER (ORDER BY lead_no, seq) AS n
    FROM ecg_blocks
    WHERE ecg_key = ? AND (lead_no > ? OR (lead_no = ? AND seq >= ?))
) w
%s ecg_blocks b ON b.ecg_key = ? AND b.lead_no = w.lead_no AND b.seq = w.seq
WHERE w.n <= 2 OR w.between_bytes < ?
ORDER BY w.lead_no, w.seq`

var (
	blocksMySQL  = fmt.Sprintf(blocksSQL, "STRAIGHT_JOIN")
	blocksSQLite = fmt.Sprintf(blocksSQL, "CROSS JOIN")
)

// blockOut is one block as Blocks reads it.
type blockOut struct {
	LeadNo  int    `gorm:"column:lead_no"`
	Seq     int    `gorm:"column:seq"`
	Samples int    `gorm:"column:samples"`
	Data    []byte `gorm:"column:data"`
}

func (r repo) Blocks(ctx context.Context, key ecg.Key, from ecgport.BlockPos, maxBytes int) ([]ecg.Block, error) {
	q := blocksSQLite
	if gormstore.IsMySQL(r.db) {
		q = blocksMySQL
	}
	var rows []blockOut
	err := r.db.WithContext(ctx).Raw(q, string(key), from.Lead, from.Lead, from.Seq, string(key), maxBytes).Scan(&rows).Error
	if err != nil {
		return nil, gormstore.MapErr(err)
	}
	out := make([]ecg.Block, 0, len(rows))
	for _, b := range rows {
		out = appendRowBlocks(out, b.LeadNo, b.Seq, b.Samples, b.Data)
	}
	// The first row may be a bundle that holds blocks before from; the page ends where the
	// next block would pass the budget.
	start := 0
	for start < len(out) && before(out[start], from) {
		start++
	}
	out = out[start:]
	for i, used := 0, 0; i < len(out); i++ {
		used += len(out[i].Data)
		if i > 0 && used > maxBytes {
			return out[:i], nil
		}
	}
	return out, nil
}

// SaveResults updates the ECG's row first: it finds out whether the ECG still exists and, on
// MySQL, locks the row, so concurrent saves and deletes of one ECG queue there instead of
// interleaving their writes to ecg_results.
func (r repo) SaveResults(ctx context.Context, key ecg.Key, results []ecg.Result, at time.Time) error {
	rows, fp, err := toResultRows(key, results)
	if err != nil {
		return err
	}
	return r.atomic(ctx, func(db *gorm.DB) error {
		res := db.Model(&ecgRow{}).Where("ecg_key = ?", string(key)).Updates(map[string]any{
			"status": string(ecg.StatusDone), "failure": "", "analyses": fp, "analysed_at": gormstore.DBTime(at),
		})
		if res.Error != nil {
			return gormstore.MapErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return ecg.ErrNotFound
		}
		var owners []string
		if err := db.Model(&ecgRow{}).Where("ecg_key = ?", string(key)).Limit(1).Pluck("owner_id", &owners).Error; err != nil {
			return gormstore.MapErr(err)
		}
		if len(owners) == 0 {
			return ecg.ErrNotFound
		}
		// Delete earlier results only when there are some. On a first analysis there are none,
		// and InnoDB's DELETE of nothing takes a gap lock, which two analyses of neighbouring
		// new ECGs then both hold before each inserts into that gap: a deadlock (seen by the
		// multi-instance suite on MariaDB). The plain read is safe: the ECG's row, locked
		// above, makes saves of one ECG queue, and this read's snapshot starts after that lock.
		var existing []int
		if err := db.Raw("SELECT 1 FROM ecg_results WHERE ecg_key = ? LIMIT 1", string(key)).Scan(&existing).Error; err != nil {
			return gormstore.MapErr(err)
		}
		if len(existing) > 0 {
			if err := db.Where("ecg_key = ?", string(key)).Delete(&resultRow{}).Error; err != nil {
				return gormstore.MapErr(err)
			}
		}
		if len(rows) == 0 {
			return nil
		}
		for i := range rows {
			rows[i].OwnerID = owners[0]
		}
		return gormstore.MapErr(db.Create(&rows).Error)
	})
}

func (r repo) ByKeys(ctx context.Context, keys []ecg.Key) ([]*ecg.ECG, error) {
	if len(keys) == 0 {
		return []*ecg.ECG{}, nil
	}
	var rows []ecgRow
	if err := r.db.WithContext(ctx).Where("ecg_key IN ?", keyStrings(keys)).Order("ecg_key").Find(&rows).Error; err != nil {
		return nil, gormstore.MapErr(err)
	}
	out := make([]*ecg.ECG, 0, len(rows))
	for i := range rows {
		e, err := rows[i].toDomain()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// blocksOfSQL reads whole ECGs' blocks; the primary key (ecg_key, lead_no, seq) serves the
// range and the order.
const blocksOfSQL = `SELECT ecg_key, lead_no, seq, samples, data FROM ecg_blocks
WHERE ecg_key IN ? ORDER BY ecg_key, lead_no, seq`

func (r repo) BlocksOf(ctx context.Context, keys []ecg.Key) (map[ecg.Key][]ecg.Block, error) {
	out := map[ecg.Key][]ecg.Block{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := r.db.WithContext(ctx).Raw(blocksOfSQL, keyStrings(keys)).Rows()
	if err != nil {
		return nil, gormstore.MapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			key string
			b   ecg.Block
		)
		if err := rows.Scan(&key, &b.Lead, &b.Seq, &b.Samples, &b.Data); err != nil {
			return nil, gormstore.MapErr(err)
		}
		out[ecg.Key(key)] = appendRowBlocks(out[ecg.Key(key)], b.Lead, b.Seq, b.Samples, b.Data)
	}
	if err := rows.Err(); err != nil {
		return nil, gormstore.MapErr(err)
	}
	return out, nil
}

// SaveFirstResults reads which ECGs of the batch are pending (and their owners), marks exactly
// those done in one UPDATE, which must change as many rows as the read found (else an ECG
// changed in between and nothing is written), and inserts all their results in one multi-row
// INSERT. The rows are locked by the UPDATE, by primary key, so two saves of one ECG queue
// there; a pending ECG has no results, so the insert needs no delete before it (whose gap
// locks deadlocked neighbouring analyses, see SaveResults).
func (r repo) SaveFirstResults(ctx context.Context, batch map[ecg.Key][]ecg.Result, at time.Time) ([]ecg.Key, error) {
	saved := []ecg.Key{}
	if len(batch) == 0 {
		return saved, nil
	}
	keys := slices.Sorted(maps.Keys(batch))
	fps := map[ecg.Key]string{}
	rowsOf := map[ecg.Key][]resultRow{}
	for _, k := range keys {
		rows, fp, err := toResultRows(k, batch[k])
		if err != nil {
			return nil, err
		}
		rowsOf[k], fps[k] = rows, fp
	}
	err := r.atomic(ctx, func(db *gorm.DB) error {
		saved = saved[:0]
		var pending []ecgRow
		err := db.Select("ecg_key", "owner_id").Where("ecg_key IN ? AND status = ?", keyStrings(keys), string(ecg.StatusPending)).
			Order("ecg_key").Find(&pending).Error
		if err != nil {
			return gormstore.MapErr(err)
		}
		if len(pending) == 0 {
			return nil
		}
		// One UPDATE per fingerprint: every ECG of a batch normally has the same analyses.
		byFP := map[string][]string{}
		var results []resultRow
		for _, p := range pending {
			k := ecg.Key(p.Key)
			byFP[fps[k]] = append(byFP[fps[k]], p.Key)
			for _, row := range rowsOf[k] {
				row.OwnerID = p.OwnerID
				results = append(results, row)
			}
			saved = append(saved, k)
		}
		changed := int64(0)
		for _, fp := range slices.Sorted(maps.Keys(byFP)) {
			res := db.Model(&ecgRow{}).Where("ecg_key IN ? AND status = ?", byFP[fp], string(ecg.StatusPending)).Updates(map[string]any{
				"status": string(ecg.StatusDone), "failure": "", "analyses": fp, "analysed_at": gormstore.DBTime(at),
			})
			if res.Error != nil {
				return gormstore.MapErr(res.Error)
			}
			changed += res.RowsAffected
		}
		if changed != int64(len(pending)) {
			return fmt.Errorf("ecggorm: %d of %d pending ECGs changed while their results were saved: %w",
				int64(len(pending))-changed, len(pending), errBatchRaced)
		}
		if len(results) == 0 {
			return nil
		}
		return gormstore.MapErr(db.Create(&results).Error)
	})
	if err != nil {
		return nil, err
	}
	return saved, nil
}

// errBatchRaced is a batch save that met an ECG changed by another writer between its read
// and its update: it wrote nothing, and the caller saves those ECGs one by one.
var errBatchRaced = errors.New("an ECG of the batch changed meanwhile")

func keyStrings(keys []ecg.Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out
}

// MarkFailed changes only a pending ECG; a done or failed one, or an unknown key (the ECG was
// deleted meanwhile), is left alone without an error.
func (r repo) MarkFailed(ctx context.Context, key ecg.Key, reason string, at time.Time) error {
	return gormstore.MapErr(r.db.WithContext(ctx).Model(&ecgRow{}).
		Where("ecg_key = ? AND status = ?", string(key), string(ecg.StatusPending)).
		Updates(map[string]any{
			"status": string(ecg.StatusFailed), "failure": ecgport.CleanFailure(reason), "analysed_at": gormstore.DBTime(at),
		}).Error)
}

// Results returns the stored results ordered by analysis name; none for an unknown key.
func (r repo) Results(ctx context.Context, key ecg.Key) ([]ecg.Result, error) {
	var rows []resultRow
	if err := r.db.WithContext(ctx).Where("ecg_key = ?", string(key)).Order("analysis").Find(&rows).Error; err != nil {
		return nil, gormstore.MapErr(err)
	}
	out := make([]ecg.Result, len(rows))
	for i := range rows {
		res, err := rows[i].toDomain()
		if err != nil {
			return nil, err
		}
		out[i] = res
	}
	return out, nil
}

// Outdated walks ecgs in key order from after, comparing each analysed ECG's fingerprint with
// the current analyses'.
func (r repo) Outdated(ctx context.Context, after ecg.Key, current []ecgport.AnalysisVersion, limit int) ([]ecg.Key, error) {
	out := []ecg.Key{}
	if limit <= 0 {
		return out, nil
	}
	fp := ecgport.Fingerprint(current)
	var keys []string
	err := r.db.WithContext(ctx).Model(&ecgRow{}).
		Where("ecg_key > ? AND status IN ? AND analyses <> ?", string(after), []string{string(ecg.StatusDone), string(ecg.StatusFailed)}, fp).
		Order("ecg_key").Limit(limit).Pluck("ecg_key", &keys).Error
	if err != nil {
		return nil, gormstore.MapErr(err)
	}
	for _, k := range keys {
		out = append(out, ecg.Key(k))
	}
	return out, nil
}
