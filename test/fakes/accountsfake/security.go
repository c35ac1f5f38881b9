package accountsfake

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/session"
	"github.com/acme/postsvc/domain/accounts/user"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
)

// Hasher is a fast, transparent stand-in for argon2id. It counts calls so tests can check
// that unknown emails pay the same hashing work as wrong passwords, and records the client
// of each call so they can check whose share of the hasher it was. Err, when set, is
// returned by every call instead of hashing (an overloaded hasher, say).
type Hasher struct {
	Hashes   atomic.Int64
	Verifies atomic.Int64
	Err      error

	mu      sync.Mutex
	clients []accounts.ClientKey
	held    map[accounts.ClientKey][]*bool // places reserved and not yet taken, oldest first
}

// Clients returns the client of every call so far, in order.
func (h *Hasher) Clients() []accounts.ClientKey {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]accounts.ClientKey(nil), h.clients...)
}

func (h *Hasher) begin(ctx context.Context, client accounts.ClientKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if h.Err != nil {
		return h.Err
	}
	h.mu.Lock()
	h.clients = append(h.clients, client)
	if places := h.held[client]; len(places) > 0 {
		h.held[client] = places[1:] // a check takes the oldest place reserved for its client
	}
	h.mu.Unlock()
	return nil
}

// Hash returns "fake$" + plain.
func (h *Hasher) Hash(ctx context.Context, client accounts.ClientKey, plain string) (user.PasswordHash, error) {
	if err := h.begin(ctx, client); err != nil {
		return "", err
	}
	h.Hashes.Add(1)
	return user.PasswordHash("fake$" + plain), nil
}

// Verify compares in constant time.
func (h *Hasher) Verify(ctx context.Context, client accounts.ClientKey, hash user.PasswordHash, plain string) (bool, error) {
	if err := h.begin(ctx, client); err != nil {
		return false, err
	}
	h.Verifies.Add(1)
	stored, ok := strings.CutPrefix(string(hash), "fake$")
	if !ok {
		return false, fmt.Errorf("accountsfake: malformed hash")
	}
	return subtle.ConstantTimeCompare([]byte(stored), []byte(plain)) == 1, nil
}

// Reserve returns Err when it wraps domain.ErrOverloaded (a hasher that sheds everything
// says so before any check). Otherwise it holds a place, which the next Hash or Verify for
// the same client takes;
// Held counts the places that release has not given back and no check has taken.
func (h *Hasher) Reserve(_ context.Context, client accounts.ClientKey) (func(), error) {
	if errors.Is(h.Err, domain.ErrOverloaded) {
		return func() {}, h.Err
	}
	place := new(bool) // only its address matters: it names this place
	h.mu.Lock()
	if h.held == nil {
		h.held = map[accounts.ClientKey][]*bool{}
	}
	h.held[client] = append(h.held[client], place)
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if i := slices.Index(h.held[client], place); i >= 0 {
			h.held[client] = slices.Delete(h.held[client], i, i+1)
		}
	}, nil
}

// Held returns how many reserved places are neither taken by a check nor given back.
func (h *Hasher) Held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, places := range h.held {
		n += len(places)
	}
	return n
}

// Tokens issues readable tokens "tok|<user>|<session>|<expiry unix>" checked against a clock.
type Tokens struct {
	Clock    ports.Clock
	Lifetime time.Duration
}

// Issue makes a token.
func (t *Tokens) Issue(uid identity.UserID, sid session.ID) (string, time.Duration, error) {
	exp := t.Clock.Now().Add(t.Lifetime).Unix()
	return fmt.Sprintf("tok|%s|%s|%d", uid, sid, exp), t.Lifetime, nil
}

// Verify parses a token made by Issue.
func (t *Tokens) Verify(token string) (accounts.AccessClaims, error) {
	var uid, sid string
	var exp int64
	parts := strings.Split(token, "|")
	if len(parts) != 4 || parts[0] != "tok" {
		return accounts.AccessClaims{}, domain.ErrUnauthenticated
	}
	uid, sid = parts[1], parts[2]
	if _, err := fmt.Sscan(parts[3], &exp); err != nil || uid == "" || sid == "" {
		return accounts.AccessClaims{}, domain.ErrUnauthenticated
	}
	if !t.Clock.Now().Before(time.Unix(exp, 0)) {
		return accounts.AccessClaims{}, fmt.Errorf("%w: expired", domain.ErrUnauthenticated)
	}
	return accounts.AccessClaims{UserID: identity.UserID(uid), SessionID: session.ID(sid), ExpiresAt: time.Unix(exp, 0)}, nil
}
