// Package postcache keeps pages of a user's post list in process memory, so that repeated
// list requests skip the database. Freshness does not depend on expiry: every key carries the
// author's posts version, which each write bumps, so a page cached before a write can no
// longer be asked for. The TTL and Forget only reclaim memory sooner.
package postcache

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gocache "github.com/patrickmn/go-cache"

	"github.com/acme/postsvc/application/flight"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/ports/posts"
)

const (
	// DefaultTTL is the page lifetime used when none is configured; the API contract promises
	// at most five minutes.
	DefaultTTL = 5 * time.Minute
	// cleanupInterval is how often go-cache's janitor removes expired pages and so gives their
	// bytes back to the budget. Until then an expired page is already a miss.
	cleanupInterval = time.Minute
	// entryShare is the largest share of the byte budget one page may take: a page bigger
	// than budget/entryShare is served but not kept. Pages reach 4 MiB of posts, so without
	// it a handful of users listing pages of 1 MiB posts would fill the whole cache and shut
	// everyone else out of it for the TTL. A page is charged its texts about twice (the posts
	// and their rendering, see pageBytes), so with the default 64 MiB budget a page of up to
	// about 1.9 MiB of text is kept; a larger one (two or more posts near 1 MiB) is read from
	// the database on every request.
	entryShare = 16
	// userShare is the largest share of the byte budget one user's pages may take together.
	// Without it one user alone could fill the budget (a page per limit and cursor), and every
	// other user's pages would be refused for the TTL. A user over it gives up its own pages
	// kept longest, never another user's.
	userShare = 4
)

// Estimated bytes a page costs beyond its strings: the post struct (two ids, text header and
// time), the pointer in the slice, the page and entry structs, and go-cache's item and map
// slot. Estimates need only be in the right range: the budget guards against runaway growth,
// not against the last kilobyte.
const (
	perPostOverhead  = 128
	perEntryOverhead = 256
)

// Stats is a snapshot of the cache counters for metrics.
type Stats struct {
	Hits      int64 // GetOrLoad calls answered from the cache
	Misses    int64 // GetOrLoad calls that needed a load (shared or not)
	Evictions int64 // pages removed by expiry or Forget
	Rejected  int64 // loaded pages not kept: too big a share of the byte budget, or no room left
	Bytes     int64 // estimated bytes of the pages held, expired but not yet cleaned included
	Items     int64 // pages held, expired but not yet cleaned included
}

// Cache implements posts.PostListCache on go-cache.
//
// go-cache stores the pages and expires them. Byte accounting and the per-user index live in
// ledger, which go-cache's eviction callback updates. ledger holds no reference back to the
// go-cache instance, so that when a Cache becomes unreachable go-cache's finalizer can still
// stop its janitor goroutine.
type Cache struct {
	items  *gocache.Cache
	flight flight.Group[string, result]
	ledger *ledger
	ttl    time.Duration
	hits   atomic.Int64
	misses atomic.Int64
}

var _ posts.PostListCache = (*Cache)(nil)

// New builds the cache from its settings. A zero or negative TTL falls back to DefaultTTL
// (never to "no expiry"); a zero byte budget keeps nothing, so every request loads.
func New(cfg config.Cache) *Cache {
	ttl := cfg.PostsTTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	maxBytes := max(cfg.PostsMaxBytes, 0)
	l := &ledger{
		maxBytes: maxBytes, maxEntry: maxBytes / entryShare, maxUser: maxBytes / userShare,
		byUser: make(map[identity.UserID]*userPages),
	}
	items := gocache.New(ttl, cleanupInterval)
	items.OnEvicted(l.evicted)
	return &Cache{items: items, ledger: l, ttl: ttl}
}

// entry is what go-cache holds. Its page is never handed out directly; callers get copies.
type entry struct {
	user identity.UserID
	// version is the key's: the author's posts version the page was read under.
	version int64
	page    posts.PostPage
	bytes   int64
	// released is set, under ledger.mu, once the entry's bytes have been given back, so that
	// the two paths that can retire an entry (an eviction callback and a silent overwrite of
	// an expired key) give them back exactly once between them.
	released bool
}

// result is what a load, shared by the callers of one key, produces.
type result struct {
	page posts.PostPage
	hit  bool
}

// GetOrLoad returns the page for key from the cache, or loads it once for all concurrent
// callers of the same key (flight.Group: the load runs on the first caller's goroutine). Each
// caller receives its own copy of the Posts slice.
//
// The load runs detached from the cancellation of the caller that started it: if that caller
// goes away, the others waiting on the same key still get the page. It keeps that caller's
// deadline (or flight's bound when it had none), so a stuck database still fails the load
// within the usual request timeout. A caller that joined a load stops waiting when its own
// context ends and gets its context's error; one whose shared load ran out of the first
// caller's time tries once more.
func (c *Cache) GetOrLoad(ctx context.Context, key posts.PostPageKey, load func(ctx context.Context) (posts.PostPage, error)) (posts.PostPage, bool, error) {
	k := cacheKey(key)
	if e, ok := c.lookup(k); ok {
		c.hits.Add(1)
		return copyPage(e.page), true, nil
	}
	res, _, err := c.flight.Do(ctx, k, func(ctx context.Context) (result, error) {
		return c.loadShared(ctx, k, key.UserID, key.Version, load)
	})
	if err != nil {
		c.misses.Add(1)
		return posts.PostPage{}, false, err
	}
	if res.hit {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return copyPage(res.page), res.hit, nil
}

// loadShared runs once per flight, with the flight's detached context. It checks the cache
// again first, because a flight for this key may have stored the page between the caller's
// miss and this flight's start.
func (c *Cache) loadShared(ctx context.Context, k string, owner identity.UserID, version int64, load func(context.Context) (posts.PostPage, error)) (result, error) {
	if e, ok := c.lookup(k); ok {
		return result{page: e.page, hit: true}, nil
	}
	page, err := load(ctx)
	if err != nil {
		return result{}, err
	}
	// The cache keeps its own copy, so neither the loader nor any caller can reach the
	// stored slice, with a rendering its hits share (budgeted in pageBytes).
	stored := copyPage(page)
	stored.Rendered = posts.NewRendering(int(renderBudget(stored)))
	c.store(k, owner, version, stored)
	return result{page: stored, hit: false}, nil
}

func (c *Cache) lookup(k string) (*entry, bool) {
	v, ok := c.items.Get(k)
	if !ok {
		return nil, false
	}
	e, ok := v.(*entry)
	return e, ok
}

// store keeps the page when it fits the budget. Reservation and insertion happen under the
// ledger's lock so the byte count always matches what go-cache holds.
//
// A user's kept pages are all of one version. Versions only move forward and every request
// asks for its author's current one, so a page of an older version can never be asked for
// again, and keeping it would only take budget from pages that can. Without this rule an
// author who writes through one instance and lists through another (whose Forget never runs
// for those writes) left a dead page there per write, for the TTL: 30 such writes and lists
// of 50 KB posts filled 66 of the 67 MB budget with them, and every other user's lists then
// missed on that instance. So keeping a page of a newer version retires the user's older
// ones, and a page loaded under an older version than the user's kept ones (a load overtaken
// by a write) is not kept at all.
func (c *Cache) store(k string, owner identity.UserID, version int64, page posts.PostPage) {
	e := &entry{user: owner, version: version, page: page, bytes: pageBytes(k, page)}
	l := c.ledger
	// Entries retired here leave go-cache once the lock is released (Delete runs the
	// eviction callback, which takes it); the callback then finds them released.
	var dropped []string
	defer func() {
		for _, d := range dropped {
			c.items.Delete(d)
		}
	}()
	l.mu.Lock()
	defer l.mu.Unlock()
	up := l.byUser[owner]
	switch {
	case up != nil && version < up.version:
		return // superseded before it could be kept
	case up != nil && version > up.version:
		dropped = l.retireAll(up, dropped)
		up = nil
	}
	// Add refuses a live entry but silently replaces an expired one that the janitor has not
	// removed yet, without calling OnEvicted. The ledger still lists that one; its bytes are
	// about to be freed, so they do not count against the new page, and it is retired below.
	var previous *entry
	held, userHeld := l.bytes.Load(), int64(0)
	if up != nil {
		previous, userHeld = up.pages[k], up.bytes
	}
	if previous != nil {
		held -= previous.bytes
		userHeld -= previous.bytes
	}
	if e.bytes > l.maxEntry || e.bytes > l.maxUser {
		l.rejected.Add(1)
		return
	}
	// A user over its share makes room from its own pages, oldest first.
	if over := userHeld + e.bytes - l.maxUser; over > 0 {
		var freed int64
		freed, dropped = l.retireOldest(up, k, over, dropped)
		held -= freed
	}
	if held+e.bytes > l.maxBytes {
		l.rejected.Add(1)
		return
	}
	if err := c.items.Add(k, e, gocache.DefaultExpiration); err != nil {
		// A live page for this key is already cached (stored by a flight for the same key
		// that raced with this one). Keys carry the version, so both pages are the same.
		return
	}
	if previous != nil {
		l.retire(k, previous)
	}
	l.add(k, e)
}

// Forget drops every cached page of a user. It costs time in proportion to that user's pages,
// not to the whole cache.
func (c *Cache) Forget(userID identity.UserID) {
	l := c.ledger
	l.mu.Lock()
	var keys []string
	if up := l.byUser[userID]; up != nil {
		keys = make([]string, 0, len(up.pages))
		for k := range up.pages {
			keys = append(keys, k)
		}
	}
	l.mu.Unlock()
	// Delete runs the eviction callback, which takes the ledger's lock, so the lock must not
	// be held here.
	for _, k := range keys {
		c.items.Delete(k)
	}
}

// Stats returns the current counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Evictions: c.ledger.evictions.Load(),
		Rejected:  c.ledger.rejected.Load(),
		Bytes:     c.ledger.bytes.Load(),
		Items:     c.ledger.items.Load(),
	}
}

// ledger accounts for the bytes held and indexes keys by user. Counters are atomics so Stats
// can read them without the lock; they are only changed with mu held.
type ledger struct {
	mu       sync.Mutex
	maxBytes int64
	// maxEntry is the most one page may take (maxBytes / entryShare).
	maxEntry int64
	// maxUser is the most one user's pages may take together (maxBytes / userShare).
	maxUser int64
	byUser  map[identity.UserID]*userPages

	bytes     atomic.Int64
	items     atomic.Int64
	evictions atomic.Int64
	rejected  atomic.Int64
}

// userPages are the pages one user has in the cache, all of one version (see store).
type userPages struct {
	pages map[string]*entry
	// order lists the user's entries from head on in the order they were kept, oldest
	// first, so that a user over its share gives up its oldest pages without sorting them
	// (a store stays O(1) amortised however many pages the user has: a sort under the
	// ledger's lock on every store would let one user's miss-heavy crawl slow every other
	// user's). Entries retired since they were listed are skipped, and dropped from the
	// list once they outnumber the live ones.
	order   []keptPage
	head    int
	bytes   int64
	version int64
}

type keptPage struct {
	k string
	e *entry
}

// live reports whether o is still the user's page under its key.
func (up *userPages) live(o keptPage) bool { return up.pages[o.k] == o.e }

// compact drops the retired entries from order once they outnumber the live ones.
func (up *userPages) compact() {
	if len(up.order)-up.head <= 2*len(up.pages)+16 {
		return
	}
	kept := make([]keptPage, 0, len(up.pages))
	for _, o := range up.order[up.head:] {
		if up.live(o) {
			kept = append(kept, o)
		}
	}
	up.order, up.head = kept, 0
}

func (l *ledger) add(k string, e *entry) {
	up := l.byUser[e.user]
	if up == nil {
		up = &userPages{pages: make(map[string]*entry), version: e.version}
		l.byUser[e.user] = up
	}
	up.pages[k] = e
	up.order = append(up.order, keptPage{k, e})
	up.compact()
	up.bytes += e.bytes
	l.bytes.Add(e.bytes)
	l.items.Add(1)
}

// retireAll retires every page of up and appends their keys to dropped, for the caller to
// delete from go-cache once it has released mu. Callers hold mu.
func (l *ledger) retireAll(up *userPages, dropped []string) []string {
	for k, e := range up.pages {
		l.retire(k, e)
		dropped = append(dropped, k)
	}
	return dropped
}

// retireOldest retires up's pages other than the one under keep, oldest first, until at
// least need bytes are freed or none is left, and returns the bytes freed. Their keys join
// dropped, as in retireAll. Callers hold mu.
func (l *ledger) retireOldest(up *userPages, keep string, need int64, dropped []string) (int64, []string) {
	if up == nil {
		return 0, dropped
	}
	var (
		freed  int64
		kept   keptPage
		passed bool
	)
	for up.head < len(up.order) && freed < need {
		o := up.order[up.head]
		up.order[up.head] = keptPage{}
		up.head++
		switch {
		case !up.live(o):
		case o.k == keep:
			kept, passed = o, true
		default:
			freed += o.e.bytes
			l.retire(o.k, o.e)
			dropped = append(dropped, o.k)
		}
	}
	if passed {
		// keep's page stays listed where it was: the head's slot before it was consumed.
		up.head--
		up.order[up.head] = kept
	}
	return freed, dropped
}

// retire gives an entry's bytes back, once, and unlists it unless the key already lists a
// newer entry. Both paths that remove an entry from go-cache end here, and whichever comes
// second finds the entry released and does nothing. Callers hold mu.
func (l *ledger) retire(k string, e *entry) {
	if e.released {
		return
	}
	e.released = true
	l.evictions.Add(1)
	l.bytes.Add(-e.bytes)
	l.items.Add(-1)
	if up := l.byUser[e.user]; up != nil && up.pages[k] == e {
		delete(up.pages, k)
		up.bytes -= e.bytes
		if len(up.pages) == 0 {
			delete(l.byUser, e.user)
		}
	}
}

// evicted is go-cache's eviction callback, called after expiry clean-up and Delete, outside
// go-cache's own lock.
func (l *ledger) evicted(k string, v any) {
	e, ok := v.(*entry)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.retire(k, e)
}

// cacheKey encodes every field of the key without ambiguity: the two free-form strings are
// length-prefixed, so no choice of user id or cursor can make two different keys collide.
func cacheKey(k posts.PostPageKey) string {
	b := make([]byte, 0, 48+len(k.UserID)+len(k.Cursor))
	b = strconv.AppendInt(b, int64(len(k.UserID)), 10)
	b = append(b, ':')
	b = append(b, k.UserID...)
	b = append(b, '|')
	b = strconv.AppendInt(b, k.Version, 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(k.Limit), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(len(k.Cursor)), 10)
	b = append(b, ':')
	b = append(b, k.Cursor...)
	return string(b)
}

// pageBytes estimates the memory a cached page holds. The key is counted twice: go-cache's map
// and the user index each keep it.
func pageBytes(k string, p posts.PostPage) int64 {
	n := int64(perEntryOverhead + 2*len(k) + len(p.NextCursor))
	for _, post := range p.Posts {
		n += perPostOverhead
		if post != nil {
			n += int64(len(post.Text()) + len(post.ID()) + len(post.AuthorID()))
		}
	}
	return n + renderBudget(p)
}

// renderBudget is the memory a page's rendering may keep (posts.Rendering): its texts and
// ids with room for their fields and some escaping. A page whose wire form is larger (text
// full of characters JSON escapes) is rendered on every hit instead of kept.
func renderBudget(p posts.PostPage) int64 {
	n := int64(64 + len(p.NextCursor))
	for _, post := range p.Posts {
		if post != nil {
			n += int64(len(post.Text()))*9/8 + int64(len(post.ID())) + renderedPostFields
		}
	}
	return n
}

// renderedPostFields is what a rendered post holds besides its text and id: the field names,
// quotes and commas, and the timestamp.
const renderedPostFields = 96

// copyPage returns the page with its own Posts slice. Posts are immutable, so copying the
// pointers is enough to keep callers from changing what others see.
func copyPage(p posts.PostPage) posts.PostPage {
	return posts.PostPage{Posts: slices.Clone(p.Posts), NextCursor: p.NextCursor, Rendered: p.Rendered}
}
