package posts

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/contract"
)

// The posts quota: Add counts a post's text against its author's total and refuses, storing
// nothing, the post that would take the total past the quota; Delete and DeleteByAuthor give
// the bytes back.

// addWithin adds a post of text under quota and returns it, or the error.
func addWithin(t *testing.T, b Backend, author identity.UserID, text string, quota int64) (*post.Post, error) {
	t.Helper()
	p := makePost(t, author, text)
	return p, b.Posts().Add(t.Context(), p, quota)
}

// expectQuotaExceeded fails unless err is post.ErrQuotaExceeded and p was not stored.
func expectQuotaExceeded(t *testing.T, b Backend, p *post.Post, err error) {
	t.Helper()
	if !errors.Is(err, post.ErrQuotaExceeded) {
		t.Fatalf("add of %d bytes past the quota: %v, want post.ErrQuotaExceeded", len(p.Text()), err)
	}
	if _, err := b.Posts().ByID(t.Context(), p.AuthorID(), p.ID()); !errors.Is(err, post.ErrNotFound) {
		t.Fatalf("a refused post was stored (ByID: %v)", err)
	}
}

func testPostQuotaRefusesWhatPassesIt(t *testing.T, b Backend) {
	const quota = 10
	a := b.NewUser(t)
	// An author's first post alone can be over the quota.
	p, err := addWithin(t, b, a, strings.Repeat("x", quota+1), quota)
	expectQuotaExceeded(t, b, p, err)
	_, err = addWithin(t, b, a, "12345", quota)
	contract.NoErr(t, "add 5 of 10", err)
	p, err = addWithin(t, b, a, "123456", quota)
	expectQuotaExceeded(t, b, p, err)
	// Exactly at the quota is within it.
	_, err = addWithin(t, b, a, "abcde", quota)
	contract.NoErr(t, "add up to the quota", err)
	p, err = addWithin(t, b, a, "1", quota)
	expectQuotaExceeded(t, b, p, err)
	// Bytes, not characters: "é" is two.
	p, err = addWithin(t, b, b.NewUser(t), strings.Repeat("é", 6), quota)
	expectQuotaExceeded(t, b, p, err)
	// Another author has a total of their own, and a larger quota lets the author go on.
	_, err = addWithin(t, b, b.NewUser(t), strings.Repeat("y", quota), quota)
	contract.NoErr(t, "another author's add", err)
	_, err = addWithin(t, b, a, "1", quota+1)
	contract.NoErr(t, "add under a larger quota", err)
	if n := len(listPosts(t, b, a, "", 10)); n != 3 {
		t.Fatalf("%d posts stored, want 3", n)
	}
}

func testPostQuotaDeletesGiveBytesBack(t *testing.T, b Backend) {
	const quota = 10
	ctx := t.Context()
	a := b.NewUser(t)
	first, err := addWithin(t, b, a, "12345", quota)
	contract.NoErr(t, "add", err)
	_, err = addWithin(t, b, a, "67890", quota)
	contract.NoErr(t, "add", err)
	// Deleting a post that is not there gives nothing back.
	if err := b.Posts().Delete(ctx, a, post.ID(contract.NewID(t))); !errors.Is(err, post.ErrNotFound) {
		t.Fatalf("delete of a missing post: %v", err)
	}
	p, err := addWithin(t, b, a, "1", quota)
	expectQuotaExceeded(t, b, p, err)
	contract.NoErr(t, "Delete", b.Posts().Delete(ctx, a, first.ID()))
	_, err = addWithin(t, b, a, "abcde", quota)
	contract.NoErr(t, "add after a delete", err)
	p, err = addWithin(t, b, a, "1", quota)
	expectQuotaExceeded(t, b, p, err)
	contract.NoErr(t, "DeleteByAuthor", b.Posts().DeleteByAuthor(ctx, a))
	_, err = addWithin(t, b, a, strings.Repeat("z", quota), quota)
	contract.NoErr(t, "add after DeleteByAuthor", err)
}

// testPostQuotaHoldsUnderConcurrentAdds: adds of one author in concurrent transactions never
// pass the quota together, and every add within it is stored.
func testPostQuotaHoldsUnderConcurrentAdds(t *testing.T, b Backend) {
	const (
		quota = 100
		adds  = 8
	)
	a := b.NewUser(t)
	// 30 bytes already stored leave room for 70: three of the 20-byte posts below.
	_, err := addWithin(t, b, a, strings.Repeat("s", 30), quota)
	contract.NoErr(t, "first add", err)
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]error, adds)
	)
	for i := range adds {
		wg.Go(func() {
			p := makePost(t, a, strings.Repeat("c", 20))
			<-start
			results[i] = b.UoW.Do(t.Context(), func(ctx context.Context, tx ports.Scope) error {
				return b.Store.Posts(tx).Add(ctx, p, quota)
			})
		})
	}
	close(start)
	wg.Wait()
	stored := 0
	for _, err := range results {
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, post.ErrQuotaExceeded):
			t.Fatalf("a concurrent add failed: %v", err)
		}
	}
	if n := len(listPosts(t, b, a, "", 20)); stored != 3 || n != 4 {
		t.Fatalf("%d of %d concurrent adds stored, %d posts listed; want 3 stored with room for 3, 4 listed", stored, adds, n)
	}
}
