// Package posts is the posts use case: a user adds, reads, lists and deletes its own posts.
// Lists are served through the post-list cache, keyed by the author's posts version so a page
// older than the author's last write is never served.
package posts

import (
	"context"

	"github.com/acme/postsvc/application/paging"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
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
}

// Service implements ports.PostService.
type Service struct {
	uow      ports.UnitOfWork
	repos    ports.Repositories
	cache    ports.PostListCache
	clock    ports.Clock
	ids      ports.IDGenerator
	settings Settings
}

var _ ports.PostService = (*Service)(nil)

// NewService builds the posts use case.
func NewService(uow ports.UnitOfWork, repos ports.Repositories, cache ports.PostListCache, clock ports.Clock,
	ids ports.IDGenerator, settings Settings,
) *Service {
	if settings.PageBytes <= 0 {
		settings.PageBytes = MaxPageBytes
	}
	if settings.PostSize == nil {
		settings.PostSize = approximateSize
	}
	return &Service{uow: uow, repos: repos, cache: cache, clock: clock, ids: ids, settings: settings}
}

// approximateSize is the fallback PostSize: the text, the id and room for the field names,
// quotes and an RFC 3339 timestamp.
func approximateSize(p *post.Post) int64 {
	return int64(len(p.Text()) + len(p.ID()) + 64)
}

// contentOwner refuses admins: they manage accounts and hold no content.
func contentOwner(p session.Principal) error {
	if p.Role != user.RoleUser {
		return domain.ErrForbidden
	}
	return nil
}

// Add stores a new post of the caller.
func (s *Service) Add(ctx context.Context, p session.Principal, text string) (*post.Post, error) {
	if err := contentOwner(p); err != nil {
		return nil, err
	}
	created, err := post.New(post.ID(s.ids.NewID()), p.UserID, text, s.clock.Now())
	if err != nil {
		return nil, err
	}
	err = s.uow.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		// The version bump comes first: it takes the author's row lock before the insert's
		// foreign-key check takes a shared one, so concurrent writers of one author queue
		// instead of deadlocking on InnoDB.
		if err := tx.Users().BumpPostsVersion(ctx, p.UserID); err != nil {
			return err
		}
		return tx.Posts().Add(ctx, created)
	})
	if err != nil {
		return nil, err
	}
	// Only after the commit: a rolled-back write must not disturb the cache.
	s.cache.Forget(p.UserID)
	return created, nil
}

// Get returns one of the caller's posts.
func (s *Service) Get(ctx context.Context, p session.Principal, id string) (*post.Post, error) {
	if err := contentOwner(p); err != nil {
		return nil, err
	}
	if !plausibleID(id) {
		return nil, post.ErrNotFound
	}
	return s.repos.Posts().ByID(ctx, p.UserID, post.ID(id))
}

// Delete removes one of the caller's posts.
func (s *Service) Delete(ctx context.Context, p session.Principal, id string) error {
	if err := contentOwner(p); err != nil {
		return err
	}
	if !plausibleID(id) {
		return post.ErrNotFound
	}
	err := s.uow.Do(ctx, func(ctx context.Context, tx ports.Repositories) error {
		// Same lock order as Add: the author's row first.
		if err := tx.Users().BumpPostsVersion(ctx, p.UserID); err != nil {
			return err
		}
		return tx.Posts().Delete(ctx, p.UserID, post.ID(id))
	})
	if err != nil {
		return err
	}
	s.cache.Forget(p.UserID)
	return nil
}

// List returns a page of the caller's posts, newest first.
func (s *Service) List(ctx context.Context, p session.Principal, req ports.PageRequest) (ports.PostPage, bool, error) {
	if err := contentOwner(p); err != nil {
		return ports.PostPage{}, false, err
	}
	var v domain.Validator
	limit, err := paging.Limit(req.Limit)
	v.Check(err)
	before, err := paging.Decode(req.Cursor)
	v.Check(err)
	if err := v.Err(); err != nil {
		return ports.PostPage{}, false, err
	}
	key := ports.PostPageKey{UserID: p.UserID, Version: p.PostsVersion, Cursor: req.Cursor, Limit: limit}
	return s.cache.GetOrLoad(ctx, key, func(ctx context.Context) (ports.PostPage, error) {
		list, err := s.repos.Posts().ListByAuthor(ctx, ports.PostListQuery{
			Author: p.UserID, Before: post.ID(before), Limit: limit,
			MaxBytes: s.settings.PageBytes, Size: s.settings.PostSize,
		})
		if err != nil {
			return ports.PostPage{}, err
		}
		page := ports.PostPage{Posts: list.Posts}
		if list.More && len(list.Posts) > 0 {
			page.NextCursor = paging.Encode(string(list.Posts[len(list.Posts)-1].ID()))
		}
		return page, nil
	})
}

// plausibleID rejects ids that no post can have before they reach the database.
func plausibleID(id string) bool { return paging.ValidID(id) }
