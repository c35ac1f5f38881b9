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

// Service implements ports.PostService.
type Service struct {
	uow   ports.UnitOfWork
	repos ports.Repositories
	cache ports.PostListCache
	clock ports.Clock
	ids   ports.IDGenerator
}

var _ ports.PostService = (*Service)(nil)

// NewService builds the posts use case.
func NewService(uow ports.UnitOfWork, repos ports.Repositories, cache ports.PostListCache, clock ports.Clock, ids ports.IDGenerator) *Service {
	return &Service{uow: uow, repos: repos, cache: cache, clock: clock, ids: ids}
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
		// One more than asked tells whether a next page exists without a count query.
		items, err := s.repos.Posts().ListByAuthor(ctx, p.UserID, post.ID(before), limit+1)
		if err != nil {
			return ports.PostPage{}, err
		}
		page := ports.PostPage{Posts: items}
		if len(items) > limit {
			page.Posts = items[:limit]
			page.NextCursor = paging.Encode(string(items[limit-1].ID()))
		}
		return page, nil
	})
}

// plausibleID rejects ids that no post can have before they reach the database.
func plausibleID(id string) bool { return paging.ValidID(id) }
