package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/testdb"
)

func newUserID(t *testing.T) identity.UserID {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return identity.UserID(id.String())
}

func addTestUser(t *testing.T, repos stores, email string, role identity.Role) *user.User {
	t.Helper()
	u, err := user.New(newUserID(t), mustEmail(t, email), "hash", "", role, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := repos.Users().Add(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestLastAdminRace demotes two different admins of two at the same time, each after the
// last-admin check the application makes. CountAdminsForUpdate must make the second check wait
// for the first demotion and see its result, so one admin always remains.
func TestLastAdminRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		store := newStores(db)
		uow := store.uow
		admins := []*user.User{
			addTestUser(t, store, "admin1@x.io", identity.RoleAdmin),
			addTestUser(t, store, "admin2@x.io", identity.RoleAdmin),
		}
		counted := make(chan struct{}, len(admins))
		errs := make([]error, len(admins))
		var wg sync.WaitGroup
		for i, a := range admins {
			wg.Go(func() {
				errs[i] = uow.Do(t.Context(), func(ctx context.Context, scope ports.Scope) error {
					tx := store.in(scope)
					n, err := tx.Users().CountAdminsForUpdate(ctx)
					if err != nil {
						return err
					}
					counted <- struct{}{}
					if n <= 1 {
						return user.ErrLastAdmin
					}
					// Give the other transaction every chance to count before this one writes.
					time.Sleep(200 * time.Millisecond)
					if err := a.ChangeRole(identity.RoleUser, time.Now()); err != nil {
						return err
					}
					return tx.Users().Update(ctx, a)
				})
			})
		}
		wg.Wait()
		refused := 0
		for _, err := range errs {
			switch {
			case errors.Is(err, user.ErrLastAdmin):
				refused++
			case err != nil:
				t.Fatalf("demotion failed: %v", err)
			}
		}
		n, err := store.Users().CountAdminsForUpdate(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 || refused != 1 {
			t.Fatalf("%d admins left and %d demotions refused, want 1 and 1", n, refused)
		}
	})
}

// TestConcurrentReadThenWrite runs many transactions that read a row and then write it, the
// shape of most use cases. On SQLite a deferred transaction that upgrades from reading to
// writing while another connection writes fails at once with SQLITE_BUSY; the adapter's
// BEGIN IMMEDIATE makes such transactions queue instead, so all of them must succeed.
func TestConcurrentReadThenWrite(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db *gorm.DB) {
		store := newStores(db)
		uow := store.uow
		u := addTestUser(t, store, "busy@x.io", identity.RoleUser)
		const n = 24
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = uow.Do(t.Context(), func(ctx context.Context, scope ports.Scope) error {
					tx := store.in(scope)
					current, err := tx.Users().ByID(ctx, u.ID())
					if err != nil {
						return err
					}
					if err := current.Rename(fmt.Sprintf("writer %d", i), time.Now()); err != nil {
						return err
					}
					if err := tx.Users().Update(ctx, current); err != nil {
						return err
					}
					return store.bump(ctx, scope, u.ID())
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("transaction %d: %v", i, err)
			}
		}
		v, err := store.stamp(t.Context(), u.ID())
		if err != nil || v != n {
			t.Fatalf("posts version = %d, %v after %d transactions", v, err, n)
		}
	})
}
