package gormstore_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/testdb"
)

// TestStampBumpIsPreparedOnce: the statements every write transaction runs (the stamps'
// read and write) are prepared on the pool once, beside the first transaction that needs
// them (which runs them unprepared meanwhile), and kept: later transactions find them ready.
// Every bump still counts exactly once.
func TestStampBumpIsPreparedOnce(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		store := newStores(db)
		u := addTestUser(t, store, "prepared@x.io", identity.RoleUser)
		read := gormstore.StampsReadSQL
		if gormstore.IsMySQL(db) {
			read = gormstore.StampsReadForUpdateSQL
		}
		bump := func() {
			t.Helper()
			err := store.uow.Do(t.Context(), func(ctx context.Context, tx ports.Scope) error {
				return store.bump(ctx, tx, u.ID())
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		bump()
		deadline := time.Now().Add(10 * time.Second)
		for gormstore.PreparedFor(db, read) == nil || gormstore.PreparedFor(db, gormstore.StampsBumpSQL) == nil {
			if time.Now().After(deadline) {
				t.Fatal("the stamps' statements were not prepared beside the first transaction")
			}
			time.Sleep(5 * time.Millisecond)
		}
		first := gormstore.PreparedFor(db, gormstore.StampsBumpSQL)
		for range 3 {
			bump()
		}
		if gormstore.PreparedFor(db, gormstore.StampsBumpSQL) != first {
			t.Fatal("the bump was prepared again")
		}
		if v, err := store.stamp(t.Context(), u.ID()); err != nil || v != 4 {
			t.Fatalf("posts stamp = %d, %v after 4 bumps", v, err)
		}
	})
}
