package httpapi

import (
	"context"
	"errors"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/session"
)

// maxTokenLength bounds a bearer token before it is handed to the verifier; real access
// tokens are a few hundred bytes.
const maxTokenLength = 4096

type principalKey struct{}

// PrincipalFrom returns the authenticated caller stored by the authentication middleware.
func PrincipalFrom(c *gin.Context) (session.Principal, bool) {
	v, ok := c.Get(principalKey{})
	if !ok {
		return session.Principal{}, false
	}
	p, ok := v.(session.Principal)
	return p, ok
}

// bearerToken extracts the token of an "Authorization: Bearer <token>" header (the scheme is
// case-insensitive). given reports whether a bearer token was presented at all, which decides
// whether the 401 challenge carries error="invalid_token".
func bearerToken(header string) (token string, given, ok bool) {
	scheme, rest, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false, false
	}
	token = strings.TrimLeft(rest, " ")
	switch {
	case token == "":
		return "", false, false
	case len(token) > maxTokenLength, strings.ContainsAny(token, " \t\r\n"):
		return "", true, false
	}
	return token, true, true
}

// hasBearerToken reports whether the request presented a bearer token.
func hasBearerToken(c *gin.Context) bool {
	_, given, _ := bearerToken(c.GetHeader("Authorization"))
	return given
}

// authenticate requires a valid access token and stores the caller's principal. Any refusal
// is a 401, except an outage: when the caller's state cannot be read the answer is 503, since
// telling a client its valid token is invalid would log it out for nothing.
//
// Every response of an authenticated route, refusals included, is marked no-store: it is one
// user's data, which no browser or proxy cache may keep.
func (s *server) authenticate(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	values := c.Request.Header.Values("Authorization")
	if len(values) != 1 {
		s.unauthenticated(c, len(values) > 1)
		return
	}
	token, given, ok := bearerToken(values[0])
	if !ok {
		s.unauthenticated(c, given)
		return
	}
	p, err := s.auth.Authenticate(c.Request.Context(), token)
	if err != nil {
		if errors.Is(err, domain.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			s.fail(c, err)
			return
		}
		s.unauthenticated(c, true)
		return
	}
	c.Set(principalKey{}, p)
	c.Next()
}

// principal returns the caller of an authenticated route. A route wired without the
// authentication middleware is refused rather than served to an anonymous caller.
func (s *server) principal(c *gin.Context) (session.Principal, bool) {
	p, ok := PrincipalFrom(c)
	if !ok {
		s.unauthenticated(c, false)
	}
	return p, ok
}
