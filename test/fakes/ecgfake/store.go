// Package ecgfake holds the ecg context's in-memory fakes for use-case tests: its repository on
// a fakes.Store. The repository passes the ECG contract suite (test/contract/ecg), like the
// real databases: the same uniqueness, the same all-or-nothing writes, the same page and batch
// boundaries, and the same split between ECG rows (which go with their owner, as the foreign key
// cascades) and their blocks and results (which stay until PurgeOwner).
package ecgfake

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	ecgport "github.com/acme/postsvc/ports/ecg"
	"github.com/acme/postsvc/test/fakes"
)

// The tables, as the migrations define them (adapters/gormstore/migrations, 00005_ecgs.sql).
const (
	ecgsTable    = "ecg.ecgs"
	blocksTable  = "ecg.blocks"
	resultsTable = "ecg.results"
)

func init() {
	// ECG rows go with their owner, as the ecgs table's foreign key does; blocks and results
	// have no foreign key and stay until PurgeOwner.
	fakes.OnIdentityDeleted(func(v *fakes.View, id identity.UserID) {
		deleteOwner(v, id)
	})
}

// ecgRow is one ECG row. Rows are replaced, never changed in place: a table's copy for a
// transaction shares them with the committed table.
type ecgRow struct {
	stored   ecg.Stored
	analyses string
	// bytes is the packed data of the ECG's blocks, which the owner's quota counts.
	bytes int64
}

type blockKey struct {
	key       ecg.Key
	lead, seq int
}

type blockRow struct {
	owner   identity.UserID
	samples int
	data    []byte
}

type resultKey struct {
	key      ecg.Key
	analysis string
}

type resultRow struct {
	owner   identity.UserID
	version int
	leads   [][]ecg.Measure
}

func ecgsOf(v *fakes.View) map[ecg.Key]ecgRow { return fakes.Table[ecg.Key, ecgRow](v, ecgsTable) }

func blocksOf(v *fakes.View) map[blockKey]blockRow {
	return fakes.Table[blockKey, blockRow](v, blocksTable)
}

func resultsOf(v *fakes.View) map[resultKey]resultRow {
	return fakes.Table[resultKey, resultRow](v, resultsTable)
}

func deleteOwner(v *fakes.View, owner identity.UserID) {
	all := ecgsOf(v)
	for k, row := range all {
		if row.stored.Owner == owner {
			delete(all, k)
		}
	}
}

// Store implements ecg.Store (ports/ecg) on a fakes.Store.
type Store struct{}

var _ ecgport.Store = Store{}

// ECGs is the ECG repository on tx.
func (Store) ECGs(tx ports.Scope) ecgport.Repository { return repo{tx} }

type repo struct{ tx ports.Scope }

// dbTime is what the databases keep of a time: UTC, to the microsecond.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// toRow keeps what the databases keep of an ECG.
func toRow(e *ecg.ECG) ecgRow {
	s := e.Stored()
	s.Leads = slices.Clone(s.Leads)
	s.Date = dbTime(s.Date)
	s.CreatedAt = dbTime(s.CreatedAt)
	if !s.AnalysedAt.IsZero() {
		s.AnalysedAt = dbTime(s.AnalysedAt)
	}
	s.Failure = ecgport.CleanFailure(s.Failure)
	return ecgRow{stored: s}
}

func (row ecgRow) toDomain() *ecg.ECG {
	s := row.stored
	s.Leads = slices.Clone(s.Leads)
	return ecg.Rehydrate(s)
}

func (r repo) Add(_ context.Context, e *ecg.ECG, blocks ecg.Blocks) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		if !fakes.IdentityExists(v, e.Owner()) {
			return fmt.Errorf("ecgfake: ECG owner %s: %w", e.Owner(), identity.ErrUnknownUser)
		}
		all := ecgsOf(v)
		for _, row := range all {
			if row.stored.Owner == e.Owner() && row.stored.ID == e.ID() {
				return fmt.Errorf("ecgfake: ECG %q of %s: %w", e.ID(), e.Owner(), ecgport.ErrDuplicate)
			}
		}
		if _, ok := all[e.Key()]; ok {
			return fmt.Errorf("ecgfake: duplicate ECG key %s", e.Key())
		}
		row := toRow(e)
		stored := blocksOf(v)
		err := blocks.Each(func(b ecg.Block) error {
			k := blockKey{key: e.Key(), lead: b.Lead, seq: b.Seq}
			if _, ok := stored[k]; ok {
				return fmt.Errorf("ecgfake: duplicate block %d/%d of ECG %s", b.Lead, b.Seq, e.Key())
			}
			stored[k] = blockRow{owner: e.Owner(), samples: b.Samples, data: slices.Clone(b.Data)}
			row.bytes += int64(len(b.Data))
			return nil
		})
		if err != nil {
			return err
		}
		all[e.Key()] = row
		return nil
	})
}

func (r repo) Get(_ context.Context, owner identity.UserID, id ecg.ID) (*ecg.ECG, error) {
	var out *ecg.ECG
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		for _, row := range ecgsOf(v) {
			if row.stored.Owner == owner && row.stored.ID == id {
				out = row.toDomain()
				return nil
			}
		}
		return ecg.ErrNotFound
	})
	return out, err
}

func (r repo) ByKey(_ context.Context, key ecg.Key) (*ecg.ECG, error) {
	var out *ecg.ECG
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		row, ok := ecgsOf(v)[key]
		if !ok {
			return ecg.ErrNotFound
		}
		out = row.toDomain()
		return nil
	})
	return out, err
}

func (r repo) List(_ context.Context, q ecgport.ListQuery) (ecgport.List, error) {
	out := ecgport.List{ECGs: []*ecg.ECG{}}
	if q.Limit <= 0 {
		return out, nil
	}
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		all := ecgsOf(v)
		var keys []ecg.Key
		for k, row := range all {
			if row.stored.Owner == q.Owner && (q.Before == "" || k < q.Before) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		slices.Reverse(keys)
		if len(keys) > q.Limit {
			keys, out.More = keys[:q.Limit], true
		}
		for _, k := range keys {
			out.ECGs = append(out.ECGs, all[k].toDomain())
		}
		return nil
	})
	return out, err
}

// LockOwner checks that the owner exists and sums the bytes of their ECGs: the fake's units of
// work already run one at a time.
func (r repo) LockOwner(_ context.Context, owner identity.UserID) (int64, error) {
	var used int64
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		if !fakes.IdentityExists(v, owner) {
			return fmt.Errorf("ecgfake: ECG owner %s: %w", owner, identity.ErrUnknownUser)
		}
		for _, row := range ecgsOf(v) {
			if row.stored.Owner == owner {
				used += row.bytes
			}
		}
		return nil
	})
	return used, err
}

func (r repo) Delete(_ context.Context, owner identity.UserID, id ecg.ID) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := ecgsOf(v)
		for k, row := range all {
			if row.stored.Owner != owner || row.stored.ID != id {
				continue
			}
			delete(all, k)
			blocks := blocksOf(v)
			for bk := range blocks {
				if bk.key == k {
					delete(blocks, bk)
				}
			}
			results := resultsOf(v)
			for rk := range results {
				if rk.key == k {
					delete(results, rk)
				}
			}
			return nil
		}
		return ecg.ErrNotFound
	})
}

func (r repo) DeleteByOwner(_ context.Context, owner identity.UserID) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		deleteOwner(v, owner)
		return nil
	})
}

func (r repo) PurgeOwner(_ context.Context, owner identity.UserID, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	n := 0
	err := fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := ecgsOf(v)
		orphan := func(key ecg.Key, o identity.UserID) bool {
			_, ok := all[key]
			return o == owner && !ok
		}
		blocks := blocksOf(v)
		var bks []blockKey
		for k, b := range blocks {
			if orphan(k.key, b.owner) {
				bks = append(bks, k)
			}
		}
		slices.SortFunc(bks, func(a, b blockKey) int {
			return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.lead, b.lead), cmp.Compare(a.seq, b.seq))
		})
		for _, k := range bks[:min(len(bks), limit)] {
			delete(blocks, k)
			n++
		}
		results := resultsOf(v)
		var rks []resultKey
		for k, res := range results {
			if orphan(k.key, res.owner) {
				rks = append(rks, k)
			}
		}
		slices.SortFunc(rks, func(a, b resultKey) int {
			return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.analysis, b.analysis))
		})
		for _, k := range rks[:min(len(rks), limit-n)] {
			delete(results, k)
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (r repo) Blocks(_ context.Context, key ecg.Key, from ecgport.BlockPos, maxBytes int) ([]ecg.Block, error) {
	out := []ecg.Block{}
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		blocks := blocksOf(v)
		var keys []blockKey
		for k := range blocks {
			if k.key == key && (k.lead > from.Lead || k.lead == from.Lead && k.seq >= from.Seq) {
				keys = append(keys, k)
			}
		}
		slices.SortFunc(keys, func(a, b blockKey) int {
			return cmp.Or(cmp.Compare(a.lead, b.lead), cmp.Compare(a.seq, b.seq))
		})
		used := 0
		for i, k := range keys {
			b := blocks[k]
			if i > 0 && used+len(b.data) > maxBytes {
				break
			}
			used += len(b.data)
			out = append(out, ecg.Block{Lead: k.lead, Seq: k.seq, Samples: b.samples, Data: slices.Clone(b.data)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (r repo) SaveResults(_ context.Context, key ecg.Key, results []ecg.Result, at time.Time) error {
	if err := ecgport.CheckResults(results); err != nil {
		return err
	}
	fp := ecgport.Fingerprint(ecgport.VersionsOf(results))
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := ecgsOf(v)
		row, ok := all[key]
		if !ok {
			return ecg.ErrNotFound
		}
		row.stored.Status, row.stored.Failure, row.stored.AnalysedAt = ecg.StatusDone, "", dbTime(at)
		row.analyses = fp
		all[key] = row
		stored := resultsOf(v)
		for k := range stored {
			if k.key == key {
				delete(stored, k)
			}
		}
		for _, res := range results {
			stored[resultKey{key: key, analysis: res.Analysis}] = resultRow{owner: row.stored.Owner, version: res.Version, leads: cloneLeads(res.Leads)}
		}
		return nil
	})
}

func (r repo) ByKeys(_ context.Context, keys []ecg.Key) ([]*ecg.ECG, error) {
	out := []*ecg.ECG{}
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		all := ecgsOf(v)
		for _, k := range slices.Compact(slices.Sorted(slices.Values(keys))) {
			if row, ok := all[k]; ok {
				out = append(out, row.toDomain())
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (r repo) BlocksOf(ctx context.Context, keys []ecg.Key) (map[ecg.Key][]ecg.Block, error) {
	out := map[ecg.Key][]ecg.Block{}
	for _, k := range keys {
		blocks, err := r.Blocks(ctx, k, ecgport.BlockPos{}, math.MaxInt)
		if err != nil {
			return nil, err
		}
		if len(blocks) > 0 {
			out[k] = blocks
		}
	}
	return out, nil
}

func (r repo) SaveFirstResults(_ context.Context, batch map[ecg.Key][]ecg.Result, at time.Time) ([]ecg.Key, error) {
	keys := slices.Sorted(maps.Keys(batch))
	for _, k := range keys {
		if err := ecgport.CheckResults(batch[k]); err != nil {
			return nil, err
		}
	}
	saved := []ecg.Key{}
	err := fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := ecgsOf(v)
		stored := resultsOf(v)
		for _, k := range keys {
			row, ok := all[k]
			if !ok || row.stored.Status != ecg.StatusPending {
				continue
			}
			row.stored.Status, row.stored.Failure, row.stored.AnalysedAt = ecg.StatusDone, "", dbTime(at)
			row.analyses = ecgport.Fingerprint(ecgport.VersionsOf(batch[k]))
			all[k] = row
			for _, res := range batch[k] {
				stored[resultKey{key: k, analysis: res.Analysis}] = resultRow{owner: row.stored.Owner, version: res.Version, leads: cloneLeads(res.Leads)}
			}
			saved = append(saved, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return saved, nil
}

func (r repo) MarkFailed(_ context.Context, key ecg.Key, reason string, at time.Time) error {
	return fakes.Access(r.tx, true, func(v *fakes.View) error {
		all := ecgsOf(v)
		row, ok := all[key]
		if !ok || row.stored.Status != ecg.StatusPending {
			return nil
		}
		row.stored.Status, row.stored.Failure, row.stored.AnalysedAt = ecg.StatusFailed, ecgport.CleanFailure(reason), dbTime(at)
		all[key] = row
		return nil
	})
}

func (r repo) Results(_ context.Context, key ecg.Key) ([]ecg.Result, error) {
	out := []ecg.Result{}
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		for k, res := range resultsOf(v) {
			if k.key == key {
				out = append(out, ecg.Result{Analysis: k.analysis, Version: res.version, Leads: cloneLeads(res.leads)})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b ecg.Result) int { return cmp.Compare(a.Analysis, b.Analysis) })
	return out, nil
}

func (r repo) Outdated(_ context.Context, after ecg.Key, current []ecgport.AnalysisVersion, limit int) ([]ecg.Key, error) {
	out := []ecg.Key{}
	if limit <= 0 {
		return out, nil
	}
	fp := ecgport.Fingerprint(current)
	err := fakes.Access(r.tx, false, func(v *fakes.View) error {
		for k, row := range ecgsOf(v) {
			analysed := row.stored.Status == ecg.StatusDone || row.stored.Status == ecg.StatusFailed
			if k > after && analysed && row.analyses != fp {
				out = append(out, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out[:min(len(out), limit)], nil
}

func cloneLeads(leads [][]ecg.Measure) [][]ecg.Measure {
	out := make([][]ecg.Measure, len(leads))
	for i, ms := range leads {
		out[i] = slices.Clone(ms)
		if out[i] == nil {
			out[i] = []ecg.Measure{}
		}
	}
	return out
}
