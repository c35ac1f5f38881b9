package accounts

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/acme/postsvc/application/paging"
	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/apikey"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
)

// APIKeySettings are the tunables of personal API keys.
type APIKeySettings struct {
	// UseFlushInterval is how often the recorded uses of keys are written to last_used_at.
	// The contract lets last_used_at lag by up to a minute, so it must be at most that.
	UseFlushInterval time.Duration
	// MaxPendingUses bounds the keys whose last use waits in memory for the next flush; when
	// it is reached the flush runs early, and uses of further keys are dropped until then
	// (each key's next use records it again).
	MaxPendingUses int
}

// The defaults of APIKeySettings.
const (
	DefaultUseFlushInterval = 30 * time.Second
	DefaultMaxPendingUses   = 10_000
	// finalFlushTimeout bounds the flush made at shutdown.
	finalFlushTimeout = 5 * time.Second
)

// APIKeys implements accounts.APIKeyService: the caller's personal API keys, and the "pat_"
// credential scheme that authenticates requests made with one.
//
// Authenticating a key reads the key and its user in one query, like a session, so a deleted
// or expired key, or a deleted user, is refused on the very next request, and the principal
// carries the user's current role. Using a key writes nothing: the time is recorded in memory
// and written by RunUseFlusher in one batched statement per interval (and by FlushUses at
// shutdown), so a burst of requests costs no write per request.
type APIKeys struct {
	uow    ports.UnitOfWork
	store  accounts.Store
	stamps ports.Stamps
	// principals keeps the principals of keys in memory; see Principals.
	principals *Principals
	clock      ports.Clock
	ids        ports.IDGenerator
	log        *slog.Logger
	settings   APIKeySettings

	mu      sync.Mutex
	pending map[apikey.ID]time.Time
	// wake asks the flusher to flush before its interval is up (pending is full).
	wake chan struct{}
}

var _ accounts.APIKeyService = (*APIKeys)(nil)

// NewAPIKeys builds the API key use case. Zero settings take the defaults; logger may be nil.
func NewAPIKeys(uow ports.UnitOfWork, store accounts.Store, stamps ports.Stamps, principals *Principals,
	clock ports.Clock, ids ports.IDGenerator, logger *slog.Logger, settings APIKeySettings,
) *APIKeys {
	if settings.UseFlushInterval <= 0 {
		settings.UseFlushInterval = DefaultUseFlushInterval
	}
	if settings.MaxPendingUses <= 0 {
		settings.MaxPendingUses = DefaultMaxPendingUses
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &APIKeys{
		uow: uow, store: store, stamps: stamps, principals: principals, clock: clock, ids: ids, log: logger, settings: settings,
		pending: map[apikey.ID]time.Time{}, wake: make(chan struct{}, 1),
	}
}

// requireSession refuses callers that did not log in: keys are managed with a session only,
// so a leaked key cannot mint more keys or delete its owner's others. The HTTP module answers
// such callers 403 before they get here (httpapi.Route.Credentials); this is the use case's
// own guard.
func requireSession(p identity.Principal) error {
	if p.Credential.Kind != identity.CredentialSession {
		return identity.ErrSessionRequired
	}
	return nil
}

// Create makes a key for the caller, unless the caller already holds MaxActivePerUser keys
// that have not expired. The limit holds however many creations arrive at once: the count
// runs in the creating transaction with the user's row locked.
func (s *APIKeys) Create(ctx context.Context, p identity.Principal, in accounts.NewAPIKeyInput) (accounts.CreatedAPIKey, error) {
	if err := requireSession(p); err != nil {
		return accounts.CreatedAPIKey{}, err
	}
	now := s.clock.Now()
	k, secret, err := apikey.New(apikey.ID(s.ids.NewID()), p.UserID, in.Name, in.ExpiresInDays, now)
	if err != nil {
		return accounts.CreatedAPIKey{}, err
	}
	err = s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		keys := s.store.APIKeys(tx)
		n, err := keys.CountActiveForUpdate(ctx, p.UserID, now)
		if err != nil {
			return err
		}
		if n >= apikey.MaxActivePerUser {
			return apikey.ErrTooMany
		}
		return keys.Add(ctx, k)
	})
	if err != nil {
		return accounts.CreatedAPIKey{}, identity.AsCaller(err)
	}
	return accounts.CreatedAPIKey{Key: k, Secret: secret}, nil
}

// List returns the caller's keys, newest first, expired ones included.
func (s *APIKeys) List(ctx context.Context, p identity.Principal) ([]*apikey.Key, error) {
	if err := requireSession(p); err != nil {
		return nil, err
	}
	return s.store.APIKeys(s.uow.Pool()).ListByUser(ctx, p.UserID)
}

// Delete deletes one of the caller's keys. Ids are opaque: anything that is not the id of one
// of the caller's keys, whatever its shape, is apikey.ErrNotFound.
func (s *APIKeys) Delete(ctx context.Context, p identity.Principal, id string) error {
	if err := requireSession(p); err != nil {
		return err
	}
	if !paging.ValidID(id) {
		return apikey.ErrNotFound
	}
	err := s.uow.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		if err := s.stamps.Bump(ctx, tx, p.UserID, ports.StampScopeAuth); err != nil {
			return err
		}
		return s.store.APIKeys(tx).Delete(ctx, p.UserID, apikey.ID(id))
	})
	return identity.AsCaller(err)
}

// Accepts reports whether credential is meant as a personal API key (it starts with "pat_");
// access tokens never do. It does no verification.
func (s *APIKeys) Accepts(credential string) bool { return apikey.LooksLikeSecret(credential) }

// Authenticate verifies a key and reads its owner's current state in one indexed query, then
// records the use in memory. A malformed secret is refused without a query. The lookup by the
// secret's SHA-256 needs no constant-time comparison: timing could at most reveal something
// about a hash, from which the 256-bit secret cannot be found.
func (s *APIKeys) Authenticate(ctx context.Context, credential string) (identity.Principal, error) {
	hash, err := apikey.ParseSecret(credential)
	if err != nil {
		return identity.Principal{}, domain.ErrUnauthenticated
	}
	now := s.clock.Now()
	p, err := s.principals.Resolve(ctx, "key:"+hash, now, func(ctx context.Context) (identity.Principal, time.Time, error) {
		p, err := s.store.APIKeys(s.uow.Pool()).Principal(ctx, hash, now)
		return p, p.Credential.ExpiresAt, err
	})
	if errors.Is(err, apikey.ErrNotFound) {
		return identity.Principal{}, domain.ErrUnauthenticated
	}
	if err != nil {
		return identity.Principal{}, err
	}
	s.recordUse(apikey.ID(p.Credential.ID), now)
	return p, nil
}

// recordUse notes that key was used at t, keeping the latest time per key. It never touches
// storage. When MaxPendingUses keys are waiting it wakes the flusher and drops the uses of
// keys not already waiting.
func (s *APIKeys) recordUse(key apikey.ID, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.pending[key]; ok {
		if t.After(last) {
			s.pending[key] = t
		}
		return
	}
	if len(s.pending) >= s.settings.MaxPendingUses {
		select {
		case s.wake <- struct{}{}:
		default:
		}
		return
	}
	s.pending[key] = t
}

// FlushUses writes the recorded uses of keys in one batched statement, at most one time per
// key, never moving a key's last_used_at backwards. When the write fails the uses are kept
// (within MaxPendingUses) for the next flush.
func (s *APIKeys) FlushUses(ctx context.Context) error {
	s.mu.Lock()
	batch := s.pending
	if len(batch) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.pending = make(map[apikey.ID]time.Time, len(batch))
	s.mu.Unlock()
	err := s.store.APIKeys(s.uow.Pool()).RecordUses(ctx, batch)
	if err != nil {
		s.mu.Lock()
		for id, t := range batch {
			if last, ok := s.pending[id]; ok {
				if t.After(last) {
					s.pending[id] = t
				}
			} else if len(s.pending) < s.settings.MaxPendingUses {
				s.pending[id] = t
			}
		}
		s.mu.Unlock()
	}
	return err
}

// RunUseFlusher flushes recorded uses every UseFlushInterval (or sooner when too many are
// waiting) until ctx ends; a failed flush is logged and retried at the next one. It does not
// flush when ctx ends: the process calls FinalFlush once the HTTP server has stopped, so that
// the uses of the last requests are written too.
func (s *APIKeys) RunUseFlusher(ctx context.Context) error {
	t := time.NewTicker(s.settings.UseFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
		if err := s.FlushUses(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("api keys: recording last uses failed; retrying at the next flush", "err", err)
		}
	}
}

// FinalFlush writes the uses still recorded, within a few seconds even if ctx has ended: it
// runs at shutdown, after the last request.
func (s *APIKeys) FinalFlush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
	defer cancel()
	return s.FlushUses(ctx)
}
