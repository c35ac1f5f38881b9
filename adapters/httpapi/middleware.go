package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-ID"

// maxRequestIDLength bounds a client-supplied request id.
const maxRequestIDLength = 128

type requestIDKey struct{}

// RequestIDFrom returns the request id stored in ctx by the router, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// saneRequestID accepts 1 to 128 characters of [A-Za-z0-9._-]: enough for every common id
// format, and nothing that could forge a log line or a header.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '.', b == '_', b == '-':
		default:
			return false
		}
	}
	return true
}

// requestID keeps the client's X-Request-ID when it is sane and makes a fresh one otherwise,
// echoes it on the response (set before anything else runs, so every response carries it)
// and stores it in the request context for logs. Handlers outside the router get the same
// from RequestID (requestid.go).
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request = withRequestID(c.Writer.Header(), c.Request)
		c.Next()
	}
}

// APIContentSecurityPolicy is the Content-Security-Policy of every response but the /docs
// page and its assets: API answers are data, so a browser that renders one anyway may load,
// run or frame nothing.
const APIContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries, errors included: no content-type
// sniffing (JSON must never turn into something executable), no Referer leaking paths to
// other sites, and a Content-Security-Policy chosen by path, so the /docs page (Swagger UI)
// gets the one it needs to work and everything else the restrictive API policy.
// Cache-Control: no-store is set by the authentication middleware and the token handlers,
// which know the response is private.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	csp := APIContentSecurityPolicy
	// The path as sent, which the routes match (an encoded slash is not a separator).
	if p := c.Request.URL.EscapedPath(); p == "/docs" || strings.HasPrefix(p, "/docs/") {
		csp = DocsContentSecurityPolicy
	}
	h.Set("Content-Security-Policy", csp)
	c.Next()
}

// accessLog writes one line per request once it has been answered. It logs the route
// template rather than the path, and never headers or bodies, so no token or password can
// reach the log.
func (s *server) accessLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := RouteOf(c)
		status := RecordedStatus(c)
		level := slog.LevelInfo
		switch {
		case status >= http.StatusInternalServerError:
			level = slog.LevelWarn
		case route == "/livez" || route == "/readyz" || route == "/metrics":
			// Probes and scrapes arrive every few seconds; keep them out of the default log
			// level.
			level = slog.LevelDebug
		}
		if !s.log.Enabled(c.Request.Context(), level) {
			return // nothing to build the line for
		}
		attrs := []slog.Attr{
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Duration("latency", time.Since(start)),
			slog.Int("bytes", max(c.Writer.Size(), 0)),
			slog.String("request_id", RequestIDFrom(c.Request.Context())),
		}
		if p, ok := PrincipalFrom(c); ok {
			attrs = append(attrs, slog.String("user_id", string(p.UserID)))
		}
		s.log.LogAttrs(c.Request.Context(), level, "http request", attrs...)
	}
}

// StatusClientClosedRequest is the status the access log and the metrics record for a
// request whose client went away before it was answered (nginx's 499): the 503 written then
// reaches nobody, and counted as a 5xx it would page an operator for the clients' hang-ups.
const StatusClientClosedRequest = 499

type clientGoneKey struct{}

// RecordedStatus is the status to record for c once it has been answered: the one written,
// or StatusClientClosedRequest when the request was cancelled because its client went away
// (fail answered context.Canceled).
func RecordedStatus(c *gin.Context) int {
	if gone, _ := c.Get(clientGoneKey{}); gone == true {
		return StatusClientClosedRequest
	}
	return c.Writer.Status()
}

// UnmatchedRoute is the route the access log gives a request that no route matched (a 404
// or 405), the same word as the metrics' route label (adapters/metrics), so a log line and
// its series can be matched. The raw path is never logged: any client could write what it
// likes into the log.
const UnmatchedRoute = "unmatched"

// RouteOf returns the route template that matched the request, or UnmatchedRoute.
func RouteOf(c *gin.Context) string {
	if route := c.FullPath(); route != "" {
		return route
	}
	return UnmatchedRoute
}

// recovery turns a panic into a 500 problem document and logs it with its stack. The
// http.ErrAbortHandler sentinel is re-raised: it asks net/http to drop the connection.
func (s *server) recovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if err, ok := rec.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(rec)
			}
			s.log.LogAttrs(c.Request.Context(), slog.LevelError, "panic while handling request",
				slog.String("request_id", RequestIDFrom(c.Request.Context())),
				slog.String("method", c.Request.Method),
				slog.String("route", RouteOf(c)),
				slog.String("panic", fmt.Sprint(rec)),
				slog.String("stack", string(debug.Stack())),
			)
			if c.Writer.Written() {
				c.Abort()
				return
			}
			writeProblem(c, newProblem(http.StatusInternalServerError, CodeInternalError, "An unexpected error occurred."))
		}()
		c.Next()
	}
}

// timeout bounds the request context, so that the database work of one request ends within
// d and an outage is answered (503, via context.DeadlineExceeded) instead of hanging. The
// clock stops while decodeJSON receives the request body (see pauseDeadline): a slow upload
// is the client's time, bounded by the read timeout, and must not leave the database work
// without a budget.
func timeout(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		if d <= 0 {
			c.Next()
			return
		}
		rd := &requestDeadline{parent: c.Request.Context(), at: time.Now().Add(d)}
		ctx, cancel := context.WithDeadline(rd.parent, rd.at)
		rd.cancel = cancel
		defer func() { rd.cancel() }()
		c.Set(requestDeadlineKey{}, rd)
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}

type requestDeadlineKey struct{}

// requestDeadline is the request timeout of one request, kept so that it can be moved later.
type requestDeadline struct {
	// parent is the request's context before the deadline: net/http cancels it when the
	// client goes away or the connection fails.
	parent context.Context
	at     time.Time
	cancel context.CancelFunc
}

// pauseDeadline moves the request deadline later by paused, the time spent receiving the
// request body, so the request keeps its whole budget for the work that follows however long
// the upload took (within the read timeout). Every value stored in the request context so far
// is kept, and the client going away still cancels the work. Without the timeout middleware
// it does nothing.
func pauseDeadline(c *gin.Context, paused time.Duration) {
	if paused > 0 {
		moveDeadline(c, func(at time.Time) time.Time { return at.Add(paused) })
	}
}

// setRequestTimeout gives the request d from now, for a route that declares a timeout of its
// own (a long upload's processing, say).
func setRequestTimeout(c *gin.Context, d time.Duration) {
	moveDeadline(c, func(time.Time) time.Time { return time.Now().Add(d) })
}

// moveDeadline replaces the request deadline with what move makes of it.
func moveDeadline(c *gin.Context, move func(time.Time) time.Time) {
	v, _ := c.Get(requestDeadlineKey{})
	rd, ok := v.(*requestDeadline)
	if !ok {
		return
	}
	rd.at = move(rd.at)
	// WithoutCancel drops the old deadline (which may have passed during the upload) but
	// keeps the values; AfterFunc restores the cancellation by the client.
	ctx, cancel := context.WithDeadline(context.WithoutCancel(c.Request.Context()), rd.at)
	stop := context.AfterFunc(rd.parent, cancel)
	previous := rd.cancel
	rd.cancel = func() {
		stop()
		cancel()
	}
	previous()
	c.Request = c.Request.WithContext(ctx)
}

// cors lets the configured browser origins call the API and answers their preflight
// requests. With no origins configured it is not installed at all. Other origins get no CORS
// header, so their browsers refuse to hand them the response; their preflight requests fall
// through to the router (405). Credentials (cookies) are never allowed: the API authenticates
// with bearer tokens. Origins are compared ignoring case, as scheme and host are: a client
// that sends HTTPS://APP.EXAMPLE is the origin https://app.example (the answer echoes the
// Origin as sent).
func cors(configured, exposed []string) gin.HandlerFunc {
	origins := make([]string, len(configured))
	for i, o := range configured {
		origins[i] = strings.ToLower(o)
	}
	anyOrigin := slices.Contains(origins, "*")
	return func(c *gin.Context) {
		h := c.Writer.Header()
		// Every answer depends on Origin once CORS is on, allowed or not, so shared caches
		// must not hand one origin's answer to another.
		h.Add("Vary", "Origin")
		origin := c.GetHeader("Origin")
		if origin == "" || (!anyOrigin && !slices.Contains(origins, strings.ToLower(origin))) {
			c.Next()
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", strings.Join(append([]string{
			HeaderRequestID, "Location", "Retry-After", "WWW-Authenticate",
		}, exposed...), ", "))
		if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, "+HeaderRequestID)
			h.Set("Access-Control-Max-Age", "600")
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		c.Next()
	}
}

// closeUnreadBodies makes every error response (4xx, 5xx) whose request body has not been
// read to its end say Connection: close. Otherwise net/http, before it writes the status line, reads what is
// left of the body to keep the connection (up to 256 KiB): a request refused without its body
// being read (401 before the body, 415, an unknown route) whose client sends the body slowly
// or not at all got its answer only at the read timeout, 60 s later, or no answer at all
// (outside probe). Closing instead answers at once; the client opens a new connection.
func closeUnreadBodies(c *gin.Context) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		c.Next()
		return
	}
	body := &trackedBody{ReadCloser: r.Body}
	r.Body = body
	c.Writer = &closeIfUnread{ResponseWriter: c.Writer, body: body}
	c.Next()
}

// trackedBody records whether its reader has reached the end.
type trackedBody struct {
	io.ReadCloser
	done atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.done.Store(true)
	}
	return n, err
}

// closeIfUnread adds Connection: close to the header of an error response, when the body is
// unread, just before the header is written. (A success read what it needed; whatever is
// left, such as a multipart epilogue, has arrived and is drained at once.)
type closeIfUnread struct {
	gin.ResponseWriter
	body *trackedBody
}

func (w *closeIfUnread) mark() {
	if !w.Written() && w.Status() >= http.StatusBadRequest && !w.body.done.Load() {
		w.Header().Set("Connection", "close")
	}
}

func (w *closeIfUnread) WriteHeaderNow() { w.mark(); w.ResponseWriter.WriteHeaderNow() }

func (w *closeIfUnread) Write(b []byte) (int, error) { w.mark(); return w.ResponseWriter.Write(b) }

func (w *closeIfUnread) WriteString(s string) (int, error) {
	w.mark()
	return w.ResponseWriter.WriteString(s)
}

func (w *closeIfUnread) Flush() { w.mark(); w.ResponseWriter.Flush() }

// Unwrap lets http.ResponseController reach the connection (the 408 answer moves the write
// deadline through it).
func (w *closeIfUnread) Unwrap() http.ResponseWriter { return w.ResponseWriter }
