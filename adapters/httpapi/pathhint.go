package httpapi

import (
	"strings"

	"github.com/gin-gonic/gin"
)

// maxHintPath bounds the paths pathHints looks at: a hint echoes the path, and a path that
// long is no typo of a route.
const maxHintPath = 2048

// pathHints finds the route a 404's path was meant for when it differs only by slashes: a
// trailing one or repeated ones ("/api/v1/posts/", "/api/v1//posts"), the slips clients make
// most. The router does not redirect them (see NewRouter), so the 404 names the path instead.
type pathHints [][]string // each route's path, split into segments (":id" and "*x" as written)

func newPathHints(routes gin.RoutesInfo) pathHints {
	seen := make(map[string]bool, len(routes))
	var h pathHints
	for _, r := range routes {
		if seen[r.Path] {
			continue
		}
		seen[r.Path] = true
		h = append(h, strings.Split(strings.TrimPrefix(r.Path, "/"), "/"))
	}
	return h
}

// hint returns the route path p was likely meant as (p without its extra slashes), or "" when
// p has none or is not a route even without them.
func (h pathHints) hint(p string) string {
	if len(p) > maxHintPath || len(p) < 2 || (!strings.HasSuffix(p, "/") && !strings.Contains(p, "//")) {
		return ""
	}
	var segs []string
	for s := range strings.SplitSeq(p, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	if len(segs) == 0 {
		return ""
	}
	for _, route := range h {
		if matchSegments(route, segs) {
			return "/" + strings.Join(segs, "/")
		}
	}
	return ""
}

// matchSegments reports whether the path segments segs fit a route's: a ":name" takes any one
// segment, a "*name" all the rest, any other must be equal.
func matchSegments(route, segs []string) bool {
	for i, r := range route {
		if strings.HasPrefix(r, "*") {
			return true
		}
		if i >= len(segs) || (!strings.HasPrefix(r, ":") && r != segs[i]) {
			return false
		}
	}
	return len(route) == len(segs)
}
