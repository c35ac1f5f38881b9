package httpapi_test

import (
	"strings"
	"testing"

	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/ports/accounts"
)

// listEndpoints are the endpoints that read query parameters, with a token allowed to call
// each.
var listEndpoints = []struct{ path, token string }{
	{"/api/v1/posts", userToken},
	{"/api/v1/admin/users", adminToken},
}

// TestUndecodableQueryStringsAre400: a query string that cannot be decoded, a parameter given
// twice or a value that is not UTF-8 is a malformed request, never silently dropped (which
// would answer the first page, or the default limit, as if nothing had been asked).
func TestUndecodableQueryStringsAre400(t *testing.T) {
	queries := map[string]string{
		"stray percent in cursor":      "?cursor=%%%",
		"bad escape in limit":          "?limit=%zz",
		"truncated escape":             "?cursor=abc%2",
		"bad escape in a name":         "?%zz=1",
		"bad escape in an unread name": "?limit=5&other=%zz",
		"semicolon separator":          "?limit=5;cursor=x",
		"limit twice":                  "?limit=5&limit=6",
		"cursor twice":                 "?cursor=a&cursor=b",
		"limit twice, once empty":      "?limit=&limit=5",
		"cursor not UTF-8":             "?cursor=%ff",
		"limit not UTF-8":              "?limit=5%c3",
	}
	for _, ep := range listEndpoints {
		for name, q := range queries {
			t.Run(ep.path+"/"+name, func(t *testing.T) {
				hs := newHarness(t)
				p := assertProblem(t, hs.do(request{Method: "GET", Path: ep.path + q, Token: ep.token}), 400, "malformed_request")
				if !strings.Contains(p.Detail, "query") {
					t.Fatalf("detail = %q, want one about the query string", p.Detail)
				}
				if hs.posts.count()+hs.admin.count() != 0 {
					t.Fatal("the use case ran")
				}
			})
		}
	}
	for name, q := range map[string]string{"q twice": "?q=a&q=b", "q not UTF-8": "?q=%ff", "bad escape in q": "?q=100%"} {
		t.Run("admin/"+name, func(t *testing.T) {
			hs := newHarness(t)
			assertProblem(t, hs.do(request{Method: "GET", Path: "/api/v1/admin/users" + q, Token: adminToken}), 400, "malformed_request")
			if hs.admin.count() != 0 {
				t.Fatal("the use case ran")
			}
		})
	}
}

// TestDecodableQueryStrings: escapes decode, and parameters the endpoint does not read may be
// repeated, like unknown JSON fields.
func TestDecodableQueryStrings(t *testing.T) {
	hs := newHarness(t)
	if rec := hs.do(request{Method: "GET", Path: "/api/v1/posts?limit=%35&cursor=a%2Bb&utm=1&utm=2", Token: userToken}); rec.Code != 200 {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
	}
	if _, arg := hs.posts.last(); arg != (ports.PageRequest{Limit: 5, Cursor: "a+b"}) {
		t.Fatalf("List got %+v", arg)
	}
	if rec := hs.do(request{Method: "GET", Path: "/api/v1/admin/users?q=caf%C3%A9+100%25", Token: adminToken}); rec.Code != 200 {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body.String())
	}
	if _, arg := hs.admin.last(); arg != (accounts.UserListRequest{Query: "café 100%"}) {
		t.Fatalf("ListUsers got %+v", arg)
	}
}

// TestAccessIsCheckedBeforeTheQueryString: a caller without access to a route learns only
// that, whatever query string it sent: 401 without a credential, 403 on an admin route.
func TestAccessIsCheckedBeforeTheQueryString(t *testing.T) {
	hs := newHarness(t)
	assertProblem(t, hs.do(request{Method: "GET", Path: "/api/v1/posts?cursor=%%%"}), 401, "unauthenticated")
	assertProblem(t, hs.do(request{Method: "GET", Path: "/api/v1/admin/users?cursor=%%%", Token: userToken}), 403, "forbidden")
	assertProblem(t, hs.do(request{Method: "GET", Path: "/api/v1/admin/users?cursor=%%%", Token: adminToken}), 400, "malformed_request")
	assertProblem(t, hs.do(request{Method: "GET", Path: "/livez?x=%%%"}), 400, "malformed_request")
	assertProblem(t, hs.do(request{Method: "GET", Path: "/nowhere?x=%%%"}), 400, "malformed_request")
}
