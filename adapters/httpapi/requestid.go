package httpapi

import (
	"context"
	"net/http"

	"github.com/google/uuid"
)

// RequestID is the router's request id middleware for handlers served outside it: the
// operations listener (APP_HTTP_OPS_ADDR) and the profiler's (APP_HTTP_PPROF_ADDR). It
// keeps the client's X-Request-ID when it is sane and makes a fresh one otherwise, sets it on
// the response before next runs, so every answer carries it (404s, 405s and HEAD included),
// and stores it in the request context. A handler under it that is the router itself (the
// probes on the operations listener) keeps that same id rather than making another.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, withRequestID(w.Header(), r))
	})
}

// withRequestID sets the request's id on the response headers h and returns r with the id in
// its context. The id is the one already in r's context when a RequestID wraps the router,
// else the client's when it is sane, else a fresh one.
func withRequestID(h http.Header, r *http.Request) *http.Request {
	if id := RequestIDFrom(r.Context()); id != "" {
		h.Set(HeaderRequestID, id)
		return r
	}
	id := r.Header.Get(HeaderRequestID)
	if !saneRequestID(id) {
		id = uuid.NewString()
	}
	h.Set(HeaderRequestID, id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
}
