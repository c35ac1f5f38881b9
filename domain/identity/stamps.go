package identity

import (
	"errors"
	"sort"
	"strconv"
	"strings"
)

// Stamps are a user's change counters by scope, kept on the user's identity row and read with
// every request's credential. A scope is a context's name for its counter ("posts"); the
// identity kernel counts scopes without knowing them. The form is "scope=version" pairs joined
// by ';', in no particular order, and "" when nothing was bumped: short enough to read on
// every request for free, and a few scopes never pass MaxStampsBytes.
type Stamps string

// MaxStampsBytes bounds the encoded stamps of one user (the column's size).
const MaxStampsBytes = 512

// ErrStamps refuses a scope that is not 1 to 32 of a-z, 0-9, '_' and '.', or stamps that
// would pass MaxStampsBytes.
var ErrStamps = errors.New("identity: invalid stamp scope, or too many scopes")

// Get returns the counter of scope, 0 when it was never bumped (or the stamps are corrupt).
func (s Stamps) Get(scope string) int64 {
	rest := string(s)
	for rest != "" {
		var pair string
		pair, rest, _ = strings.Cut(rest, ";")
		if name, v, ok := strings.Cut(pair, "="); ok && name == scope {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0
			}
			return n
		}
	}
	return 0
}

// Bumped returns the stamps with scope's counter one higher.
func (s Stamps) Bumped(scope string) (Stamps, error) {
	if !validScope(scope) {
		return s, ErrStamps
	}
	next := scope + "=" + strconv.FormatInt(s.Get(scope)+1, 10)
	var pairs []string
	for _, pair := range strings.Split(string(s), ";") {
		if name, _, ok := strings.Cut(pair, "="); ok && name != scope && validScope(name) {
			pairs = append(pairs, pair)
		}
	}
	out := Stamps(strings.Join(append(pairs, next), ";"))
	if len(out) > MaxStampsBytes {
		return s, ErrStamps
	}
	return out, nil
}

func validScope(scope string) bool {
	if scope == "" || len(scope) > 32 {
		return false
	}
	return strings.IndexFunc(scope, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' && r != '.'
	}) < 0
}

// Counters returns the counters of s by scope; malformed pairs are left out.
func (s Stamps) Counters() map[string]int64 {
	out := make(map[string]int64)
	rest := string(s)
	for rest != "" {
		var pair string
		pair, rest, _ = strings.Cut(rest, ";")
		name, v, ok := strings.Cut(pair, "=")
		if !ok || !validScope(name) {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > out[name] {
			out[name] = n
		}
	}
	return out
}

// StampsOf builds stamps from counters by scope, in scope order, so that equal counters give
// equal stamps. Invalid scopes and counters below one are left out (a missing scope reads 0).
func StampsOf(counters map[string]int64) Stamps {
	names := make([]string, 0, len(counters))
	for name, n := range counters {
		if n > 0 && validScope(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(counters[name], 10))
	}
	return Stamps(b.String())
}

// Merged returns, scope by scope, the larger counter of s and other.
func (s Stamps) Merged(other Stamps) Stamps {
	c := s.Counters()
	for name, n := range other.Counters() {
		if n > c[name] {
			c[name] = n
		}
	}
	return StampsOf(c)
}
