package gormstore_test

import (
	"database/sql"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/test/testdb"
)

// TestEachInBatchesVisitsEveryRowOnce: over several batches, with the visit writing the rows
// it is given, every matching row is visited once, in id order, and no other.
func TestEachInBatchesVisitsEveryRowOnce(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		if err := db.Exec("CREATE TABLE batch_rows (id VARCHAR(16) PRIMARY KEY, v VARCHAR(16) NOT NULL)").Error; err != nil {
			t.Fatal(err)
		}
		const n = 1203 // two full batches and a part
		for i := range n + 100 {
			v := "todo"
			if i >= n {
				v = "skip" // matches no visit
			}
			if err := db.Exec("INSERT INTO batch_rows (id, v) VALUES (?, ?)", fmt.Sprintf("%06d", i), v).Error; err != nil {
				t.Fatal(err)
			}
		}
		sqlDB, err := db.DB()
		if err != nil {
			t.Fatal(err)
		}
		tx, err := sqlDB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		var visited []string
		err = gormstore.EachInBatches(ctx, tx, "SELECT id FROM batch_rows WHERE v = ? AND id > ? ORDER BY id LIMIT ?", []any{"todo"},
			func(rows *sql.Rows) (string, string, error) {
				var id string
				err := rows.Scan(&id)
				return id, id, err
			},
			func(id string) error {
				visited = append(visited, id)
				// The visit changes what the query matches: the batches must not depend on it.
				_, err := tx.ExecContext(ctx, "UPDATE batch_rows SET v = 'done' WHERE id = ?", id)
				return err
			})
		if err != nil {
			t.Fatal(err)
		}
		if len(visited) != n {
			t.Fatalf("visited %d rows, want %d", len(visited), n)
		}
		for i, id := range visited {
			if want := fmt.Sprintf("%06d", i); id != want {
				t.Fatalf("visit %d was row %s, want %s", i, id, want)
			}
		}
	})
}
