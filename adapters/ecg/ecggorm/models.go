package ecggorm

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// The storage model mirrors the tables created by the migrations (00005_ecgs.sql); the
// migrations, not these tags, define the schema.

// ecgRow is one row of the ecgs table.
type ecgRow struct {
	Key         string    `gorm:"column:ecg_key;primaryKey"`
	OwnerID     string    `gorm:"column:owner_id"`
	ECGID       string    `gorm:"column:ecg_id"`
	RecordedAt  time.Time `gorm:"column:recorded_at"`
	Leads       string    `gorm:"column:leads"`
	ContentHash []byte    `gorm:"column:content_hash"`
	Status      string    `gorm:"column:status"`
	Failure     string    `gorm:"column:failure"`
	// Analyses is the fingerprint of the stored results (fingerprint).
	Analyses   string     `gorm:"column:analyses"`
	CreatedAt  time.Time  `gorm:"column:created_at;autoCreateTime:false"`
	AnalysedAt *time.Time `gorm:"column:analysed_at"`
	// DataBytes is the packed data of the ECG's blocks, summed (as ecg_blocks.data_bytes
	// counts it): what the owner's quota counts (00015_ecg_data_bytes.sql). Add writes it once
	// the blocks are written.
	DataBytes int64 `gorm:"column:data_bytes"`
}

func (ecgRow) TableName() string { return "ecgs" }

// blockRow is one row of the ecg_blocks table: one block, or a bundle of blocks (bundle.go).
type blockRow struct {
	Key     string `gorm:"column:ecg_key;primaryKey"`
	LeadNo  int    `gorm:"column:lead_no;primaryKey"`
	Seq     int    `gorm:"column:seq;primaryKey"`
	OwnerID string `gorm:"column:owner_id"`
	Samples int    `gorm:"column:samples"`
	// DataBytes is the packed data of the row's blocks: len(Data) for one block, without the
	// frame headers for a bundle (bundle.go). A read cuts its batch to a byte budget without
	// reading the data (repo.Blocks).
	DataBytes int    `gorm:"column:data_bytes"`
	Data      []byte `gorm:"column:data"`
}

func (blockRow) TableName() string { return "ecg_blocks" }

// resultRow is one row of the ecg_results table.
type resultRow struct {
	Key      string `gorm:"column:ecg_key;primaryKey"`
	Analysis string `gorm:"column:analysis;primaryKey"`
	Version  int    `gorm:"column:version"`
	OwnerID  string `gorm:"column:owner_id"`
	Measures string `gorm:"column:measures"`
}

func (resultRow) TableName() string { return "ecg_results" }

// leadHeader is one lead as the leads column keeps it: what describes its signal, never the
// samples.
type leadHeader struct {
	Name      string `json:"name"`
	Samples   int    `json:"samples"`
	TextBytes int64  `json:"text_bytes"`
	// Hash is the SHA-256 of the samples, in hex.
	Hash string `json:"hash"`
}

// measureJSON is one measure as the measures column keeps it. The value is the number's
// decimal text as a JSON string, so it comes back exactly as it was written, whatever its
// spelling ("0.333", "-12", "1e-7").
type measureJSON struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func toECGRow(e *ecg.ECG) (ecgRow, error) {
	heads := make([]leadHeader, len(e.Leads()))
	for i, l := range e.Leads() {
		heads[i] = leadHeader{
			Name: l.Name, Samples: l.Signal.Samples, TextBytes: l.Signal.TextBytes,
			Hash: hex.EncodeToString(l.Signal.Hash[:]),
		}
	}
	leads, err := json.Marshal(heads)
	if err != nil {
		return ecgRow{}, fmt.Errorf("ecggorm: encode lead headers: %w", err)
	}
	content := e.Content()
	row := ecgRow{
		Key: string(e.Key()), OwnerID: string(e.Owner()), ECGID: string(e.ID()),
		RecordedAt: gormstore.DBTime(e.Date()), Leads: string(leads), ContentHash: content[:],
		Status: string(e.Status()), Failure: ecgport.CleanFailure(e.Failure()),
		CreatedAt: gormstore.DBTime(e.CreatedAt()),
	}
	if !e.AnalysedAt().IsZero() {
		at := gormstore.DBTime(e.AnalysedAt())
		row.AnalysedAt = &at
	}
	return row, nil
}

func (r *ecgRow) toDomain() (*ecg.ECG, error) {
	var heads []leadHeader
	if err := json.Unmarshal([]byte(r.Leads), &heads); err != nil {
		return nil, fmt.Errorf("ecggorm: ECG %s: corrupt lead headers: %w", r.Key, err)
	}
	leads := make([]ecg.Lead, len(heads))
	for i, h := range heads {
		leads[i] = ecg.Lead{Name: h.Name, Signal: ecg.Signal{Samples: h.Samples, TextBytes: h.TextBytes}}
		if n, err := hex.Decode(leads[i].Signal.Hash[:], []byte(h.Hash)); err != nil || n != len(leads[i].Signal.Hash) {
			return nil, fmt.Errorf("ecggorm: ECG %s: corrupt hash of lead %d", r.Key, i)
		}
	}
	s := ecg.Stored{
		Key: ecg.Key(r.Key), ID: ecg.ID(r.ECGID), Owner: identity.UserID(r.OwnerID),
		Date: r.RecordedAt, Leads: leads, Status: ecg.Status(r.Status), Failure: r.Failure,
		CreatedAt: r.CreatedAt,
	}
	if copy(s.Content[:], r.ContentHash) != len(s.Content) || len(r.ContentHash) != len(s.Content) {
		return nil, fmt.Errorf("ecggorm: ECG %s: content hash of %d bytes", r.Key, len(r.ContentHash))
	}
	if r.AnalysedAt != nil {
		s.AnalysedAt = *r.AnalysedAt
	}
	return ecg.Rehydrate(s), nil
}

// toResultRows checks results against the schema's limits (ecgport.CheckResults, whose
// limits are the columns') and encodes them (without their owner, which the caller sets),
// with their fingerprint.
func toResultRows(key ecg.Key, results []ecg.Result) ([]resultRow, string, error) {
	if err := ecgport.CheckResults(results); err != nil {
		return nil, "", err
	}
	rows := make([]resultRow, 0, len(results))
	for _, r := range results {
		leads := make([][]measureJSON, len(r.Leads))
		for i, ms := range r.Leads {
			leads[i] = make([]measureJSON, len(ms))
			for j, m := range ms {
				leads[i][j] = measureJSON{Name: m.Name, Value: m.Value.String()}
			}
		}
		measures, err := json.Marshal(leads)
		if err != nil {
			return nil, "", fmt.Errorf("ecggorm: encode results of %q: %w", r.Analysis, err)
		}
		rows = append(rows, resultRow{Key: string(key), Analysis: r.Analysis, Version: r.Version, Measures: string(measures)})
	}
	return rows, ecgport.Fingerprint(ecgport.VersionsOf(results)), nil
}

func (r *resultRow) toDomain() (ecg.Result, error) {
	var leads [][]measureJSON
	if err := json.Unmarshal([]byte(r.Measures), &leads); err != nil {
		return ecg.Result{}, fmt.Errorf("ecggorm: results of %q for ECG %s: %w", r.Analysis, r.Key, err)
	}
	out := ecg.Result{Analysis: r.Analysis, Version: r.Version, Leads: make([][]ecg.Measure, len(leads))}
	for i, ms := range leads {
		out.Leads[i] = make([]ecg.Measure, len(ms))
		for j, m := range ms {
			v, err := ecg.ParseNumber(m.Value)
			if err != nil {
				return ecg.Result{}, fmt.Errorf("ecggorm: results of %q for ECG %s: %w", r.Analysis, r.Key, err)
			}
			out.Leads[i][j] = ecg.Measure{Name: m.Name, Value: v}
		}
	}
	return out, nil
}
