package gormstore_test

import (
	"maps"
	"testing"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/test/testdb"
)

// TestCutoffsTable runs the cut-off table's contract (stampboard.Cutoffs) on each database:
// a heartbeat creates the row and then moves it, each member has one row, and Remove deletes a
// row only when it still holds the given heartbeat (any heartbeat when negative).
func TestCutoffsTable(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		c := gormstore.NewCutoffs(db)
		want := func(rows map[string]int64) {
			t.Helper()
			got, err := c.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, rows) {
				t.Fatalf("List = %v, want %v", got, rows)
			}
		}
		want(map[string]int64{})
		for _, step := range []struct {
			member string
			beat   int64
		}{{"a", 1}, {"b", 1}, {"a", 2}, {"a", 3}} {
			if err := c.Beat(ctx, step.member, step.beat); err != nil {
				t.Fatalf("Beat(%s, %d): %v", step.member, step.beat, err)
			}
		}
		want(map[string]int64{"a": 3, "b": 1})
		if err := c.Remove(ctx, "a", 2); err != nil {
			t.Fatal(err)
		}
		want(map[string]int64{"a": 3, "b": 1}) // a's heartbeat moved on: its process is alive
		if err := c.Remove(ctx, "a", 3); err != nil {
			t.Fatal(err)
		}
		if err := c.Remove(ctx, "b", -1); err != nil {
			t.Fatal(err)
		}
		if err := c.Remove(ctx, "nobody", -1); err != nil {
			t.Fatal(err)
		}
		want(map[string]int64{})
	})
}
