package httpapi

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
)

// maxTokenLength bounds a bearer token before it is handed to the verifier; real access
// tokens are a few hundred bytes.
const maxTokenLength = 4096

type principalKey struct{}

// PrincipalFrom returns the authenticated caller stored by the authentication middleware;
// false on a public route, or an optional one called without a credential.
func PrincipalFrom(c *gin.Context) (identity.Principal, bool) {
	v, ok := c.Get(principalKey{})
	if !ok {
		return identity.Principal{}, false
	}
	p, ok := v.(identity.Principal)
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

// authenticate checks the credential of a route that needs or accepts one, and stores the
// caller's principal. The credential is handed to the first scheme whose Accepts says it is of
// its kind (an access token, a personal API key). Any refusal is a 401, except an outage: when
// the caller's state cannot be read the answer is 503, since telling a client its valid
// credential is invalid would log it out for nothing. A valid credential of a kind the route
// does not take is a 403.
//
// Every response of such a route, refusals included, is marked no-store: it is one user's
// data, which no browser or proxy cache may keep.
func (s *server) authenticate(r Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		values := c.Request.Header.Values("Authorization")
		if len(values) == 0 && r.Auth == Optional {
			c.Next()
			return
		}
		if len(values) != 1 {
			s.unauthenticated(c, len(values) > 1)
			return
		}
		token, given, ok := bearerToken(values[0])
		if !ok {
			s.unauthenticated(c, given)
			return
		}
		p, err := s.verify(c.Request.Context(), token)
		if err != nil {
			if k := domain.KindOf(err); k == domain.KindUnavailable || k == domain.KindOverloaded ||
				errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				s.fail(c, err)
				return
			}
			s.unauthenticated(c, true)
			return
		}
		if len(r.Credentials) > 0 && !slices.Contains(r.Credentials, p.Credential.Kind) {
			s.fail(c, identity.ErrSessionRequired)
			return
		}
		if r.Content {
			if err := identity.RequireContentOwner(p); err != nil {
				s.fail(c, err)
				return
			}
		}
		if r.Admin {
			if err := identity.RequireAdmin(p); err != nil {
				s.fail(c, err)
				return
			}
		}
		c.Set(principalKey{}, p)
		c.Next()
	}
}

// verify hands token to the scheme it belongs to.
func (s *server) verify(ctx context.Context, token string) (identity.Principal, error) {
	for _, a := range s.authenticators {
		if a.Accepts(token) {
			return a.Authenticate(ctx, token)
		}
	}
	return identity.Principal{}, domain.ErrUnauthenticated
}

// PrincipalOf returns the caller of a route that requires authentication. A route registered
// without it is refused (401) rather than served to an anonymous caller, and false tells the
// handler to stop.
func PrincipalOf(c *gin.Context) (identity.Principal, bool) {
	p, ok := PrincipalFrom(c)
	if !ok {
		kernelOf(c).unauthenticated(c, false)
	}
	return p, ok
}
