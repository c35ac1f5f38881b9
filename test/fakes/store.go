// Package fakes holds in-memory implementations of the ports for use-case tests. The store and
// unit of work pass the same repository contract suite as the real databases
// (test/contract), so a use-case test cannot pass against a fake that behaves differently.
package fakes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/session"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

// data is one consistent state of the store. Values are copies, never shared with callers.
type data struct {
	users        map[user.ID]user.User
	postsVersion map[user.ID]int64
	posts        map[post.ID]post.Post
	sessions     map[session.ID]session.Session
}

func (d *data) clone() *data {
	return &data{
		users:        maps.Clone(d.users),
		postsVersion: maps.Clone(d.postsVersion),
		posts:        maps.Clone(d.posts),
		sessions:     maps.Clone(d.sessions),
	}
}

// Store is an in-memory database. Reads outside a transaction see committed state; a
// transaction works on a private copy that replaces the committed state on commit, so a
// rollback leaves nothing behind, as with a real database.
type Store struct {
	mu        sync.RWMutex
	committed *data
	txMu      sync.Mutex // serialises transactions, like SQLite's single writer
	// FailNext, when set, makes the next repository call return it (fault injection).
	failMu   sync.Mutex
	failNext error
}

// StorageScope marks the store (the auto-commit scope) as a ports.Scope.
func (s *Store) StorageScope() {}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{committed: &data{
		users: map[user.ID]user.User{}, postsVersion: map[user.ID]int64{},
		posts: map[post.ID]post.Post{}, sessions: map[session.ID]session.Session{},
	}}
}

// FailNext makes the next repository call fail with err.
func (s *Store) FailNext(err error) {
	s.failMu.Lock()
	s.failNext = err
	s.failMu.Unlock()
}

func (s *Store) injected() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	err := s.failNext
	s.failNext = nil
	return err
}

// Users, Posts and Sessions read and write committed state directly (auto-commit).
func (s *Store) Users() ports.UserRepository       { return &users{s: s, view: s.autocommit} }
func (s *Store) Posts() ports.PostRepository       { return &posts{s: s, view: s.autocommit} }
func (s *Store) Sessions() ports.SessionRepository { return &sessions{s: s, view: s.autocommit} }

// autocommit runs fn against the committed state; write operations take the exclusive lock.
func (s *Store) autocommit(write bool, fn func(d *data) error) error {
	if err := s.injected(); err != nil {
		return err
	}
	if write {
		s.txMu.Lock()
		defer s.txMu.Unlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		next := s.committed.clone()
		if err := fn(next); err != nil {
			return err
		}
		s.committed = next
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn(s.committed)
}

// UnitOfWork runs transactions against a Store.
type UnitOfWork struct{ s *Store }

// NewUnitOfWork binds a unit of work to s.
func NewUnitOfWork(s *Store) *UnitOfWork { return &UnitOfWork{s: s} }

// Do runs fn on a private copy and publishes it only when fn returns nil without panicking.
func (u *UnitOfWork) Do(ctx context.Context, fn func(ctx context.Context, tx ports.Repositories) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u.s.txMu.Lock()
	defer u.s.txMu.Unlock()
	u.s.mu.RLock()
	work := u.s.committed.clone()
	u.s.mu.RUnlock()
	tx := &txRepos{s: u.s, d: work}
	if err := fn(ctx, tx); err != nil {
		return err // work is dropped: rollback
	}
	u.s.mu.Lock()
	u.s.committed = work
	u.s.mu.Unlock()
	return nil
}

type txRepos struct {
	s *Store
	d *data
}

// StorageScope marks a transaction as a ports.Scope.
func (t *txRepos) StorageScope() {}

func (t *txRepos) view(_ bool, fn func(d *data) error) error {
	if err := t.s.injected(); err != nil {
		return err
	}
	return fn(t.d)
}
func (t *txRepos) Users() ports.UserRepository       { return &users{s: t.s, view: t.view} }
func (t *txRepos) Posts() ports.PostRepository       { return &posts{s: t.s, view: t.view} }
func (t *txRepos) Sessions() ports.SessionRepository { return &sessions{s: t.s, view: t.view} }

type viewFunc func(write bool, fn func(d *data) error) error

// users implements ports.UserRepository.
type users struct {
	s    *Store
	view viewFunc
}

func (r *users) Add(_ context.Context, u *user.User) error {
	return r.view(true, func(d *data) error {
		for _, existing := range d.users {
			if existing.Email() == u.Email() {
				return user.ErrEmailTaken
			}
		}
		if _, ok := d.users[u.ID()]; ok {
			return fmt.Errorf("fakes: duplicate user id %s", u.ID())
		}
		d.users[u.ID()] = *u
		d.postsVersion[u.ID()] = 0
		return nil
	})
}

func (r *users) ByID(_ context.Context, id user.ID) (*user.User, error) {
	var out *user.User
	err := r.view(false, func(d *data) error {
		u, ok := d.users[id]
		if !ok {
			return user.ErrNotFound
		}
		out = &u
		return nil
	})
	return out, err
}

func (r *users) ByEmail(_ context.Context, email user.Email) (*user.User, error) {
	var out *user.User
	err := r.view(false, func(d *data) error {
		for _, u := range d.users {
			if u.Email() == email {
				out = &u
				return nil
			}
		}
		return user.ErrNotFound
	})
	return out, err
}

func (r *users) Update(_ context.Context, u *user.User) error {
	return r.view(true, func(d *data) error {
		if _, ok := d.users[u.ID()]; !ok {
			return user.ErrNotFound
		}
		d.users[u.ID()] = *u
		return nil
	})
}

func (r *users) Delete(_ context.Context, id user.ID) error {
	return r.view(true, func(d *data) error {
		if _, ok := d.users[id]; !ok {
			return user.ErrNotFound
		}
		delete(d.users, id)
		delete(d.postsVersion, id)
		// Mirror the databases' ON DELETE CASCADE.
		for pid, p := range d.posts {
			if p.AuthorID() == id {
				delete(d.posts, pid)
			}
		}
		for sid, s := range d.sessions {
			if s.UserID() == id {
				delete(d.sessions, sid)
			}
		}
		return nil
	})
}

func (r *users) Search(_ context.Context, q ports.UserQuery) ([]*user.User, error) {
	var out []*user.User
	err := r.view(false, func(d *data) error {
		needle := strings.ToLower(q.Query)
		ids := slices.Collect(maps.Keys(d.users))
		slices.Sort(ids)
		slices.Reverse(ids)
		for _, id := range ids {
			if q.Before != "" && id >= q.Before {
				continue
			}
			u := d.users[id]
			if needle != "" && !strings.Contains(strings.ToLower(u.Email().String()), needle) &&
				!strings.Contains(strings.ToLower(u.Name()), needle) {
				continue
			}
			out = append(out, &u)
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
		}
		return nil
	})
	return out, err
}

func (r *users) CountAdminsForUpdate(_ context.Context) (int, error) {
	n := 0
	err := r.view(false, func(d *data) error {
		for _, u := range d.users {
			if u.Role().IsAdmin() {
				n++
			}
		}
		return nil
	})
	return n, err
}

func (r *users) BumpPostsVersion(_ context.Context, id user.ID) error {
	return r.view(true, func(d *data) error {
		if _, ok := d.users[id]; !ok {
			return user.ErrNotFound
		}
		d.postsVersion[id]++
		return nil
	})
}

// posts implements ports.PostRepository.
type posts struct {
	s    *Store
	view viewFunc
}

func (r *posts) Add(_ context.Context, p *post.Post) error {
	return r.view(true, func(d *data) error {
		if _, ok := d.users[p.AuthorID()]; !ok {
			return fmt.Errorf("fakes: post author %s does not exist", p.AuthorID())
		}
		if _, ok := d.posts[p.ID()]; ok {
			return fmt.Errorf("fakes: duplicate post id %s", p.ID())
		}
		d.posts[p.ID()] = *p
		return nil
	})
}

func (r *posts) ByID(_ context.Context, author user.ID, id post.ID) (*post.Post, error) {
	var out *post.Post
	err := r.view(false, func(d *data) error {
		p, ok := d.posts[id]
		if !ok || p.AuthorID() != author {
			return post.ErrNotFound
		}
		out = &p
		return nil
	})
	return out, err
}

func (r *posts) Delete(_ context.Context, author user.ID, id post.ID) error {
	return r.view(true, func(d *data) error {
		p, ok := d.posts[id]
		if !ok || p.AuthorID() != author {
			return post.ErrNotFound
		}
		delete(d.posts, id)
		return nil
	})
}

func (r *posts) ListByAuthor(_ context.Context, q ports.PostListQuery) (ports.PostList, error) {
	out := ports.PostList{Posts: []*post.Post{}}
	if q.Limit <= 0 {
		return out, nil
	}
	err := r.view(false, func(d *data) error {
		var ids []post.ID
		for id, p := range d.posts {
			if p.AuthorID() == q.Author && (q.Before == "" || id < q.Before) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		slices.Reverse(ids)
		var used int64
		for i, id := range ids {
			p := d.posts[id]
			n := q.SizeOf(&p)
			if i == q.Limit || !q.Fits(len(out.Posts), used, n) {
				out.More = true
				break
			}
			out.Posts = append(out.Posts, &p)
			used += n
		}
		return nil
	})
	return out, err
}

func (r *posts) DeleteByAuthor(_ context.Context, author user.ID) error {
	return r.view(true, func(d *data) error {
		for id, p := range d.posts {
			if p.AuthorID() == author {
				delete(d.posts, id)
			}
		}
		return nil
	})
}

// sessions implements ports.SessionRepository.
type sessions struct {
	s    *Store
	view viewFunc
}

func (r *sessions) Add(_ context.Context, s *session.Session) error {
	return r.view(true, func(d *data) error {
		if _, ok := d.users[s.UserID()]; !ok {
			return fmt.Errorf("fakes: session user %s does not exist", s.UserID())
		}
		d.sessions[s.ID()] = *s
		return nil
	})
}

func (r *sessions) ByID(_ context.Context, id session.ID) (*session.Session, error) {
	var out *session.Session
	err := r.view(false, func(d *data) error {
		s, ok := d.sessions[id]
		if !ok {
			return session.ErrNotFound
		}
		out = &s
		return nil
	})
	return out, err
}

func (r *sessions) Update(_ context.Context, s *session.Session) error {
	return r.view(true, func(d *data) error {
		if _, ok := d.sessions[s.ID()]; !ok {
			return session.ErrNotFound
		}
		d.sessions[s.ID()] = *s
		return nil
	})
}

func (r *sessions) RevokeAllForUser(_ context.Context, id user.ID, now time.Time) error {
	return r.view(true, func(d *data) error {
		for sid, s := range d.sessions {
			if s.UserID() == id && s.RevokedAt() == nil {
				s.Revoke(now)
				d.sessions[sid] = s
			}
		}
		return nil
	})
}

func (r *sessions) Principal(_ context.Context, id session.ID, now time.Time) (session.Principal, error) {
	var out session.Principal
	err := r.view(false, func(d *data) error {
		s, ok := d.sessions[id]
		if !ok || !s.Active(now) {
			return session.ErrNotFound
		}
		u, ok := d.users[s.UserID()]
		if !ok {
			return session.ErrNotFound
		}
		out = session.Principal{UserID: u.ID(), SessionID: s.ID(), Role: u.Role(), PostsVersion: d.postsVersion[u.ID()]}
		return nil
	})
	return out, err
}
