package httpapi

import (
	"net/url"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// queryParams decodes the query string of an endpoint that reads the parameters names and
// returns their values ("" when absent). When the query string cannot be decoded (a stray or
// malformed percent escape, "?cursor=%%%", or a ';' separator), when one of names is given
// more than once, or when one of their values is not valid UTF-8, it answers 400
// malformed_request and returns false. gin's c.Query silently drops what it cannot decode, so
// "?cursor=%%%" used to list the first page and "?limit=%zz" the default number of items.
//
// Parameters the endpoint does not read are ignored, like unknown JSON fields, but the query
// string as a whole must still decode: there is no telling which parameter a client meant.
func queryParams(c *gin.Context, names ...string) (map[string]string, bool) {
	values, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		undecodableQuery(c)
		return nil, false
	}
	out := make(map[string]string, len(names))
	for _, name := range names {
		switch v := values[name]; {
		case len(v) > 1:
			malformed(c, "The query parameter "+name+" is given more than once.")
			return nil, false
		case len(v) == 1 && !utf8.ValidString(v[0]):
			malformed(c, "The query parameter "+name+" must decode to valid UTF-8.")
			return nil, false
		case len(v) == 1:
			out[name] = v[0]
		}
	}
	return out, true
}

// decodableQuery is the kernel's middleware that holds every route, those that read no
// parameter included, to the contract's rule: a query string that cannot be decoded is 400
// malformed_request. Without it "/users/me?x=%%%" answered 200 while "/posts?x=%%%" answered
// 400. Requests without a query string, most of them, cost a comparison.
func decodableQuery(c *gin.Context) {
	if raw := c.Request.URL.RawQuery; raw != "" {
		if _, err := url.ParseQuery(raw); err != nil {
			undecodableQuery(c)
			c.Abort()
			return
		}
	}
	c.Next()
}

// undecodableQuery answers 400 for a query string that does not decode. The parser's error
// text would echo the client's input; the detail says what is wrong instead.
func undecodableQuery(c *gin.Context) {
	malformed(c, "The query string cannot be decoded: every '%' must start an escape of two "+
		"hexadecimal digits (%25 for a literal '%'), and parameters are separated by '&'.")
}
