// Package posts is the posts use case: a user adds, reads, lists and deletes its own posts.
// Lists are served through the post-list cache, keyed by the author's posts version so a page
// older than the author's last write is never served.
package posts

import (
	"context"

	"github.com/acme/postsvc/application/paging"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/posts"
)

// MaxPageBytes is the contract's bound on one page: it ends before its encoded posts pass
// 4 MiB, and always holds at least one post when any remain. With 1 MiB posts a page of 100
// would otherwise be over 100 MiB in memory (600 MiB once escaped).
const MaxPageBytes = 4 << 20

// Settings are the use case's tunables, filled by the composition root.
type Settings struct {
	// PageBytes bounds a page by the encoded size of its posts; zero means MaxPageBytes.
	PageBytes int64
	// PostSize is the size of one post as the API encodes it, never less than its text's
	// length. The encoding belongs to the HTTP adapter, so the composition root hands its
	// measure in; nil falls back to the text's length plus a fixed allowance for the id and
	// timestamp, which undercounts only escaped characters.
	PostSize func(*post.Post) int64
	// PostSizeBound bounds PostSize from above for any post with that id and a text of that
	// many bytes, so that a page that fits whatever its texts hold is not measured text by
	// text (posts.PostListQuery.MaxSize). Nil measures every page, unless PostSize is nil too:
	// then it is the fallback's own bound.
	PostSizeBound func(id post.ID, textBytes int64) int64
	// QuotaBytes bounds the total bytes of one author's post texts: an add past it is
	// refused with post.ErrQuotaExceeded. Zero means DefaultQuotaBytes.
	QuotaBytes int64
}

// DefaultQuotaBytes is the posts quota when Settings leave it out (APP_POSTS_QUOTA_BYTES
// has the same default): 1 GiB of text per user, as images and ECGs have.
const DefaultQuotaBytes = 1 << 30

// StampScope names the posts context's per-user change counter (ports.Stamps): bumped with
// every post write, carried by every principal.
const StampScope = "posts"

// Service implements posts.PostService.
type Service struct {
	uow      ports.UnitOfWork
	store    posts.Store
	stamps   ports.Stamps
	cache    posts.PostListCache
	clock    ports.Clock
	ids      ports.IDGenerator
	settings Settings
}

var (
	_ posts.PostService   = (*Service)(nil)
	_ ports.UserDataOwner = (*Service)(nil)
)

// NewService builds the posts use case.
func NewService(uow ports.UnitOfWork, store posts.Store, stamps ports.Stamps, cache posts.PostListCache, clock ports.Clock,
	ids ports.IDGenerator, settings Settings,
) *Service {
	if settings.PageBytes <= 0 {
		settings.PageBytes = MaxPageBytes
	}
	if settings.QuotaBytes <= 0 {
		settings.QuotaBytes = DefaultQuotaBytes
	}
	if settings.PostSize == nil {
		settings.PostSize, settings.PostSizeBound = approximateSize, approximateBound
	}
	return &Service{uow: uow, store: store, stamps: stamps, cache: cache, clock: clock, ids: ids, settings: settings}
}

// approximateSize is the fallback PostSize: the text, the id and room for the field names,
// quotes and an RFC 3339 timestamp.
func approximateSize(p *post.Post) int64 { return approximateBound(p.ID(), int64(len(p.Text()))) }

// approximateBound is approximateSize from the lengths alone, which is all it counts.
func approximateBound(id post.ID, textBytes int64) int64 { return textBytes + int64(len(id)) + 64 }

// contentOwner refuses admins: they manage accounts and hold no content.
func contentOwner(p identity.Principal) error { return identity.RequireContentOwner(p) }

// Add stores a new post of the caller, within the caller's posts quota.
func (s *Service) Add(ctx context.Context, p identity.Principal, text string) (*post.Post, error) {
	if err := contentOwner(p); err != nil {
		return nil, err
	}
	created, err := post.New(post.ID(s.ids.NewID()), p.UserID, text, s.clock.Now())
	if err != nil {
		return nil, err
	}
	err = s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		// The stamp comes first: it takes the author's stamp lock before the insert's
		// foreign-key check takes a shared one on the user, so concurrent writers of one
		// author queue instead of deadlocking on InnoDB.
		if err := s.stamps.Bump(ctx, tx, p.UserID, StampScope); err != nil {
			return err
		}
		return s.store.Posts(tx).Add(ctx, created, s.settings.QuotaBytes)
	})
	if err != nil {
		return nil, identity.AsCaller(err)
	}
	// Only after the commit: a rolled-back write must not disturb the cache.
	s.cache.Forget(p.UserID)
	return created, nil
}

// Get returns one of the caller's posts.
func (s *Service) Get(ctx context.Context, p identity.Principal, id string) (*post.Post, error) {
	if err := contentOwner(p); err != nil {
		return nil, err
	}
	if !plausibleID(id) {
		return nil, post.ErrNotFound
	}
	return s.store.Posts(s.uow.Pool()).ByID(ctx, p.UserID, post.ID(id))
}

// Delete removes one of the caller's posts.
func (s *Service) Delete(ctx context.Context, p identity.Principal, id string) error {
	if err := contentOwner(p); err != nil {
		return err
	}
	if !plausibleID(id) {
		return post.ErrNotFound
	}
	err := s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		// Same lock order as Add: the author's row first.
		if err := s.stamps.Bump(ctx, tx, p.UserID, StampScope); err != nil {
			return err
		}
		return s.store.Posts(tx).Delete(ctx, p.UserID, post.ID(id))
	})
	if err != nil {
		return identity.AsCaller(err)
	}
	s.cache.Forget(p.UserID)
	return nil
}

// List returns a page of the caller's posts, newest first.
func (s *Service) List(ctx context.Context, p identity.Principal, req ports.PageRequest) (posts.PostPage, bool, error) {
	if err := contentOwner(p); err != nil {
		return posts.PostPage{}, false, err
	}
	var v domain.Validator
	limit, err := paging.Limit(req.Limit)
	v.Check(err)
	before, err := paging.Decode(req.Cursor)
	v.Check(err)
	if err := v.Err(); err != nil {
		return posts.PostPage{}, false, err
	}
	// The author's stamp, read with the caller's credential on this very request, keys the
	// page: a page cached before the author's last committed write (on any instance) has an
	// older key and can never be served again.
	key := posts.PostPageKey{UserID: p.UserID, Version: p.Stamp(StampScope), Cursor: req.Cursor, Limit: limit}
	return s.cache.GetOrLoad(ctx, key, func(ctx context.Context) (posts.PostPage, error) {
		list, err := s.store.Posts(s.uow.Pool()).ListByAuthor(ctx, posts.PostListQuery{
			Author: p.UserID, Before: post.ID(before), Limit: limit,
			MaxBytes: s.settings.PageBytes, Size: s.settings.PostSize, MaxSize: s.settings.PostSizeBound,
		})
		if err != nil {
			return posts.PostPage{}, err
		}
		page := posts.PostPage{Posts: list.Posts}
		if list.More && len(list.Posts) > 0 {
			page.NextCursor = paging.Encode(string(list.Posts[len(list.Posts)-1].ID()))
		}
		return page, nil
	})
}

// plausibleID rejects ids that no post can have before they reach the database.
func plausibleID(id string) bool { return paging.ValidID(id) }

// DeleteUserData deletes a deleted user's posts in the deleting transaction
// (ports.UserDataOwner).
func (s *Service) DeleteUserData(ctx context.Context, tx ports.Scope, id identity.UserID) error {
	return s.store.Posts(tx).DeleteByAuthor(ctx, id)
}

// CleanUpUser drops a deleted user's cached pages from this instance's memory, once the
// deletion has committed. Pages are keyed by the author's version and become unreachable with
// the user anyway; this only gives their memory back sooner.
func (s *Service) CleanUpUser(_ context.Context, id identity.UserID) error {
	s.cache.Forget(id)
	return nil
}
