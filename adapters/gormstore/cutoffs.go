package gormstore

import (
	"context"

	"gorm.io/gorm"
)

// Cutoffs is the board_cutoffs table: the instances that cannot reach Redis say so through
// the database, which they still reach (stampboard.Cutoffs, whose contract it implements).
// Each instance writes only its own row; every instance reads the whole table a few times a
// second, and it is empty while every instance reaches Redis.
type Cutoffs struct{ db *gorm.DB }

// NewCutoffs returns the table's adapter on db.
func NewCutoffs(db *gorm.DB) Cutoffs { return Cutoffs{db: db} }

// List returns every row: member → heartbeat.
func (c Cutoffs) List(ctx context.Context) (map[string]int64, error) {
	rows, err := c.db.WithContext(ctx).Raw("SELECT member, beat FROM board_cutoffs").Rows()
	if err != nil {
		return nil, MapErr(err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]int64{}
	for rows.Next() {
		var (
			member string
			beat   int64
		)
		if err := rows.Scan(&member, &beat); err != nil {
			return nil, MapErr(err)
		}
		out[member] = beat
	}
	if err := rows.Err(); err != nil {
		return nil, MapErr(err)
	}
	return out, nil
}

// Beat writes member's row with its heartbeat, creating it if it is not there. Only member's
// own process writes its row, so the update-then-insert cannot race with itself.
func (c Cutoffs) Beat(ctx context.Context, member string, beat int64) error {
	res := c.db.WithContext(ctx).Exec("UPDATE board_cutoffs SET beat = ? WHERE member = ?", beat, member)
	if res.Error != nil {
		return MapErr(res.Error)
	}
	if res.RowsAffected > 0 {
		return nil
	}
	return MapErr(c.db.WithContext(ctx).Exec("INSERT INTO board_cutoffs (member, beat) VALUES (?, ?)", member, beat).Error)
}

// Remove deletes member's row if it still holds beat (any beat when beat is negative): an
// instance removes its own row when it reaches Redis again, and any instance removes a row
// whose heartbeat stopped long ago (its process is gone).
func (c Cutoffs) Remove(ctx context.Context, member string, beat int64) error {
	q := c.db.WithContext(ctx)
	if beat < 0 {
		return MapErr(q.Exec("DELETE FROM board_cutoffs WHERE member = ?", member).Error)
	}
	return MapErr(q.Exec("DELETE FROM board_cutoffs WHERE member = ? AND beat = ?", member, beat).Error)
}
