package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/argon2"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/posts/postsgorm"
	"github.com/acme/postsvc/application/posts"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain/identity"
)

// Environment of the HTTP ceiling: the runner starts itself again as a separate process with
// these set, so the ceiling, like the real server, runs in a process of its own.
const (
	envCeilingResponse = "POSTSVC_LOAD_CEILING_RESPONSE"
	envCeilingAddr     = "POSTSVC_LOAD_CEILING_ADDR"
	// envCeilingDSN, when set, makes the ceiling read the caller's principal from MySQL
	// before answering, as every authenticated request of the service does;
	// envCeilingPool is that pool's size.
	envCeilingDSN  = "POSTSVC_LOAD_CEILING_DSN"
	envCeilingPool = "POSTSVC_LOAD_CEILING_POOL"
	// envCeilingList, when set (mysql or sqlite), makes the ceiling run the list's statements
	// on envCeilingDSN for each request instead (see serveCeiling).
	envCeilingList = "POSTSVC_LOAD_CEILING_LIST"
)

// capturedResponse is a real cached list response, replayed by the HTTP ceiling.
type capturedResponse struct {
	Status int         `json:"status"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"`
}

// capture keeps what the server sent in resp (body in w.buf). Date is left to net/http, which
// adds it to both servers' responses; Transfer-Encoding and the connection headers are
// net/http's choice. Content-Length is kept: the service sets it on every JSON response, and
// the ceiling sends the same one.
func capture(resp reply, body []byte) capturedResponse {
	h := resp.header.Clone()
	for _, k := range []string{"Date", "Transfer-Encoding", "Connection", "Keep-Alive"} {
		h.Del(k)
	}
	return capturedResponse{Status: resp.status, Header: h, Body: append([]byte(nil), body...)}
}

// serveCeiling is the HTTP ceiling process: a bare net/http server that answers every request
// with the captured response's status, headers and body, written the way the service writes
// a JSON response (headers, status, then one Write of the encoded body). With dsn it first
// reads the principal of the bearer token's session, the one database read every
// authenticated request of the service makes; with list as well (mysql or sqlite, dsn then
// being the ceilings' SQLite file), it instead runs the list's two statements for the
// token's user and the cursor's position, prepared once per connection as the service runs
// them, and answers the same.
func serveCeiling(file, addr, dsn, list string, poolSize int) error {
	cr, err := readCaptured(file)
	if err != nil {
		return err
	}
	var (
		db        *sql.DB
		principal *principalReader
		st        statements
	)
	switch list {
	case "":
		if dsn != "" {
			if db, err = openPool(dsn, poolSize); err != nil {
				return err
			}
			principal = &principalReader{db: db}
		}
	case dbMySQL:
		st = mysqlStatements
		if db, err = openPool(dsn, poolSize); err != nil {
			return err
		}
	case dbSQLite:
		st = sqliteStatements
		gdb, cleanup, err := gormstore.Open(config.Database{
			Driver: config.DriverSQLite, DSN: dsn,
			MaxOpenConns: poolSize, MaxIdleConns: poolSize, ConnMaxLifetime: 30 * time.Minute,
		})
		if err != nil {
			return err
		}
		defer cleanup()
		if db, err = gdb.DB(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown list database %q", list)
	}
	if db != nil {
		defer db.Close()
	}
	// The list's statements run as the service runs its own, so that this server does the
	// list's work no worse than the service can.
	var lister *issuer
	if list != "" {
		if lister, err = preparedIssuer(context.Background(), db, st.listHeads, st.listTexts); err != nil {
			return err
		}
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// /livez tells the runner the process is up; it skips the reads, which need a token.
		if db != nil && req.URL.Path != "/livez" {
			var err error
			token := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
			if principal != nil {
				var sid string
				if sid, err = sessionIDOf(token); err == nil {
					err = principal.read(req.Context(), sid)
				}
			} else {
				err = ceilingList(req, lister, st, token)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		cr.write(w)
	})
	return listenCeiling(addr, handler)
}

// ceilingList runs the list statements for the token's user before the request's cursor (the
// id the list-miss scenario encodes in it).
func ceilingList(req *http.Request, is *issuer, st statements, token string) error {
	c, err := claimsOf(token)
	if err != nil {
		return err
	}
	cursor := req.URL.Query().Get("cursor")
	if cursor == "" {
		return errors.New("no cursor: the list ceiling answers the list-miss scenario's requests only")
	}
	before, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return fmt.Errorf("cursor %q: %w", cursor, err)
	}
	return listPage(req.Context(), is, st, c.Sub, string(before), 20)
}

// readCaptured reads the response a ceiling process replays, written by startCeiling.
func readCaptured(file string) (capturedResponse, error) {
	var cr capturedResponse
	raw, err := os.ReadFile(file) //nolint:gosec // G304: a path the runner itself wrote
	if err != nil {
		return cr, err
	}
	return cr, json.Unmarshal(raw, &cr)
}

// write answers with the captured status, headers and body, the way the service writes a JSON
// response: headers, status, then one Write of the encoded body.
func (cr capturedResponse) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range cr.Header {
		h[k] = v
	}
	w.WriteHeader(cr.Status)
	_, _ = w.Write(cr.Body)
}

// listenCeiling serves handler on addr with the service's default timeouts until SIGINT or
// SIGTERM.
func listenCeiling(addr string, handler http.Handler) error {
	// The same timeouts as the service's defaults (config.Defaults).
	srv := &http.Server{
		Addr: addr, Handler: handler,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: httpapi.MaxHeaderBytes,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startCeiling writes the captured response to dir/file and starts this runner again as the
// ceiling process name, with env plus the address; addrVar names the address's variable and
// respVar the response file's.
func startCeiling(ctx context.Context, name, dir, file string, cr capturedResponse, addrVar, respVar string, env []string) (*process, error) {
	path := dir + "/" + file
	raw, err := json.Marshal(cr)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddr(ctx)
	if err != nil {
		return nil, err
	}
	env = append(env, respVar+"="+path, addrVar+"="+addr)
	// Every path answers, /livez included.
	return startProcess(ctx, name, self, nil, env, "http://"+addr, "/livez", nil)
}

// startHTTPCeiling writes the captured response to dir and starts the ceiling process; with a
// dsn, one that also reads the caller's principal (see serveCeiling).
func startHTTPCeiling(ctx context.Context, dir string, cr capturedResponse, dsn string, poolSize int) (*process, error) {
	var env []string
	name := "HTTP ceiling"
	if dsn != "" {
		env = append(env, envCeilingDSN+"="+dsn, envCeilingPool+"="+strconv.Itoa(poolSize))
		name = "HTTP ceiling with principal read"
	}
	return startCeiling(ctx, name, dir, "ceiling-response.json", cr, envCeilingAddr, envCeilingResponse, env)
}

// startListCeiling starts the ceiling process that runs the list's statements on the database
// (dsn: MySQL's, or the ceilings' SQLite file) before each answer.
func startListCeiling(ctx context.Context, dir string, cr capturedResponse, list, dsn string, poolSize int) (*process, error) {
	env := []string{envCeilingList + "=" + list, envCeilingDSN + "=" + dsn, envCeilingPool + "=" + strconv.Itoa(poolSize)}
	return startCeiling(ctx, "HTTP ceiling with the list statements", dir, "list-ceiling-response.json", cr, envCeilingAddr, envCeilingResponse, env)
}

// The statements the service issues, taken from the adapters that issue them, so that the
// ceilings cannot drift from them.
const (
	// The author's stamps (the kernel's per-user change counters) are read, under a row lock
	// on MySQL, and written back bumped before the insert (gormstore's Stamps.Bump).
	stampsForUpdateSQL = gormstore.StampsReadForUpdateSQL
	bumpStampsSQL      = gormstore.StampsBumpSQL
	insertPostSQL      = postsgorm.InsertSQL
	// The post's bytes are counted into the author's total within the posts quota
	// (postsgorm's Add), before the insert.
	usageAddSQL = postsgorm.UsageAddSQL
	// A list page is two statements: the ids and text lengths from the index, then the texts
	// of the posts that fit the page's byte budget (postsgorm's ListByAuthor, which issues
	// them on the connection itself, the same SQL on both dialects).
	listHeadsSQL = postsgorm.HeadsBeforeSQL
	listTextsSQL = postsgorm.TextsSQL
	principalSQL = `SELECT u.id, u.role, u.stamps
FROM sessions s
JOIN users u ON u.id = s.user_id
WHERE s.id = ? AND s.revoked_at IS NULL AND s.expires_at > ?`
)

// statements are the SQL texts of the DB ceilings for one database, as the service issues
// them there.
type statements struct {
	stampsRead, bumpStamps, usageAdd, insertPost, listHeads, listTexts string
}

// all returns every statement, for preparedIssuer.
func (st statements) all() []string {
	return []string{st.stampsRead, st.bumpStamps, st.usageAdd, st.insertPost, st.listHeads, st.listTexts}
}

// mysqlStatements are the service's statements on MySQL.
var mysqlStatements = statements{
	stampsRead: stampsForUpdateSQL, bumpStamps: bumpStampsSQL, usageAdd: usageAddSQL, insertPost: insertPostSQL,
	listHeads: listHeadsSQL, listTexts: listTextsSQL,
}

// sqliteStatements are the service's statements on SQLite: the stamps are read without a
// row lock (SQLite has none; the transaction began IMMEDIATE, holding the write lock).
var sqliteStatements = statements{
	stampsRead: gormstore.StampsReadSQL, bumpStamps: bumpStampsSQL, usageAdd: usageAddSQL, insertPost: insertPostSQL,
	listHeads: listHeadsSQL, listTexts: listTextsSQL,
}

// dbNow is a timestamp as the service writes it: UTC, whole microseconds.
func dbNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// principalReader is the per-request authentication read as the service runs it: one
// statement prepared on the pool (adapters/gormstore/prepared.go), for the informational
// ceilings that include it. It is prepared on first use, once the server has migrated.
type principalReader struct {
	db   *sql.DB
	once sync.Once
	stmt *sql.Stmt
	err  error
}

func (p *principalReader) read(ctx context.Context, sessionID string) error {
	p.once.Do(func() { p.stmt, p.err = p.db.PrepareContext(ctx, principalSQL) }) //nolint:sqlclosecheck // lives as long as the pool
	if p.err != nil {
		return p.err
	}
	var (
		id, role, stamps string
	)
	return p.stmt.QueryRowContext(ctx, sessionID, dbNow()).Scan(&id, &role, &stamps)
}

// insertCeiling is the add-post transaction issued directly: the author's stamps bump, the
// quota's count and the insert, committed together, as posts.Service.Add does. withPrincipal first does the
// per-request authentication read, as every authenticated request does.
func insertCeiling(is *issuer, st statements, users []*loadUser, text string, principal *principalReader) op {
	return func(ctx context.Context, w *worker, _ int64) (bool, error) {
		u := users[w.id%len(users)]
		if principal != nil {
			if err := principal.read(ctx, u.sessionID); err != nil {
				return false, err
			}
		}
		id, err := uuid.NewV7()
		if err != nil {
			return false, err
		}
		tx, err := is.db.BeginTx(ctx, nil)
		if err != nil {
			return false, err
		}
		var stamps string
		if err := is.scanOne(ctx, tx, st.stampsRead, []any{u.id}, &stamps); err != nil {
			_ = tx.Rollback()
			return false, err
		}
		next, err := identity.Stamps(stamps).Bumped(posts.StampScope)
		if err != nil {
			_ = tx.Rollback()
			return false, err
		}
		if err := is.exec(ctx, tx, st.bumpStamps, string(next), u.id); err != nil {
			_ = tx.Rollback()
			return false, err
		}
		n := int64(len(text))
		if err := is.exec(ctx, tx, st.usageAdd, n, u.id, n, posts.DefaultQuotaBytes); err != nil {
			_ = tx.Rollback()
			return false, err
		}
		if err := is.exec(ctx, tx, st.insertPost, id.String(), u.id, text, len(text), dbNow()); err != nil {
			_ = tx.Rollback()
			return false, err
		}
		return false, tx.Commit()
	}
}

// selectCeiling is the list queries issued directly: the heads of one more row than the page
// (as the use case asks, to know whether a next page exists), then the page's texts, read
// into Go values. The cursor is a fresh
// one per request, as in the list-miss scenario.
func selectCeiling(is *issuer, st statements, users []*loadUser, limit int, principal *principalReader) op {
	return func(ctx context.Context, w *worker, seq int64) (bool, error) {
		u := users[w.id%len(users)]
		if principal != nil {
			if err := principal.read(ctx, u.sessionID); err != nil {
				return false, err
			}
		}
		return false, listPage(ctx, is, st, u.id, futureID(seq), limit)
	}
}

// listPage runs the list's two statements for one page of author's posts before the id
// before.
func listPage(ctx context.Context, is *issuer, st statements, author, before string, limit int) error {
	ids, err := pageHeads(ctx, is, st, author, before, limit)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return errors.New("the list query returned no rows")
	}
	// The page's posts are consecutive in the (author_id, id) index: the service reads
	// their texts as the range from the first id to the last.
	rows, err := is.query(ctx, nil, st.listTexts, author, ids[0], ids[len(ids)-1], len(ids))
	if err != nil {
		return err
	}
	defer rows.Close()
	// The destinations live outside the loop, as in the service's adapter: Scan takes their
	// addresses, so declared inside they would be allocated for every row.
	var (
		id, text string
		created  time.Time
	)
	for rows.Next() {
		if err := rows.Scan(&id, &text, &created); err != nil {
			return err
		}
	}
	return rows.Err()
}

// pageHeads runs the first list statement and returns the ids of the page's posts: limit of
// them, out of the limit+1 heads read.
func pageHeads(ctx context.Context, is *issuer, st statements, author, before string, limit int) ([]string, error) {
	rows, err := is.query(ctx, nil, st.listHeads, author, before, limit+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		ids   = make([]string, 0, limit)
		id    string
		bytes int64
	)
	for rows.Next() {
		if err := rows.Scan(&id, &bytes); err != nil {
			return nil, err
		}
		if len(ids) < limit {
			ids = append(ids, id)
		}
	}
	return ids, rows.Err()
}

// argon2Params are the service's hashing parameters.
type argon2Params struct {
	memoryKiB, iterations uint32
	parallelism           uint8
}

// hashCeiling runs raw Argon2id verifications (key derivation plus constant-time compare,
// what a verification is) with p on runtime.NumCPU() goroutines.
func hashCeiling(ctx context.Context, p argon2Params, b bounds) result {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	password := []byte(loadPassword)
	want := argon2.IDKey(password, salt, p.iterations, p.memoryKiB, p.parallelism, 32)
	b.clients = runtime.NumCPU()
	r := drive(ctx, "hashing ceiling (raw argon2id)", b, 0, func(context.Context, *worker, int64) (bool, error) {
		got := argon2.IDKey(password, salt, p.iterations, p.memoryKiB, p.parallelism, 32)
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return false, errors.New("argon2id verification mismatch")
		}
		return false, nil
	})
	r.Unit = "verif"
	return r
}

// futureID is a UUIDv7-shaped id later than every id the service has made (its time field is
// all ones), different for every seq. As a cursor it asks for the newest posts, the same rows
// as the first page, under a cache key no request has used before.
func futureID(seq int64) string {
	return fmt.Sprintf("ffffffff-ffff-7fff-bfff-%012x", seq)
}

// sessionIDOf reads the sid claim of an access token without verifying it: the runner only
// needs to know which session the token names.
func sessionIDOf(token string) (string, error) {
	c, err := claimsOf(token)
	if err == nil && c.SID == "" {
		err = errors.New("token without sid")
	}
	return c.SID, err
}

// tokenClaims are the access token's claims the ceilings read.
type tokenClaims struct {
	SID string `json:"sid"`
	Sub string `json:"sub"`
}

// claimsOf reads an access token's claims without verifying it.
func claimsOf(token string) (tokenClaims, error) {
	var c tokenClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, errors.New("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("token claims: %w", err)
	}
	return c, nil
}
