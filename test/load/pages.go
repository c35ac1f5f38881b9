package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// largePages is one kind of large list page the memory scenarios read.
type largePages struct {
	name string
	// text is every seeded post's text; perPage is how many of them a page holds: as many
	// as fit 4 MiB once JSON-encoded, at least one.
	text    string
	perPage int
	// seeded is how many posts each user gets: a page more than perPage, so every page read
	// says that another follows.
	seeded int
	users  []*loadUser
}

// listLargePages measures the server's peak RSS while many clients list distinct pages of
// 1 MiB posts at once: every request names a cursor no earlier one used, so each one is a
// cache miss that reads its page from MySQL. Two kinds of text: prose, where a page holds three
// posts (3 MiB of JSON), and a control character that JSON escapes six-fold (\u0001), where
// a page holds the one post it must (6 MiB of JSON). Before pages were bounded, one request
// for 100 such posts took 544 MB (1.35 GB escaped). Last, as many clients upload escaped
// posts at once: each body is 6 MiB of JSON. The target is a peak below 512 MiB each time.
//
// The posts are seeded by a few clients and before any measured scenario here, so that no
// scenario starts from the memory another one left behind (RSS falls back only slowly).
func (r *runner) listLargePages(ctx context.Context) error {
	clients := r.opts.clients1MiB
	kinds := []*largePages{
		{name: "list pages of 1 MiB posts", text: prose(1 << 20), perPage: 3, seeded: 4},
		{name: "list pages of 1 MiB posts escaping 6x", text: strings.Repeat("\x01", 1<<20), perPage: 1, seeded: 2},
	}
	for i, kind := range kinds {
		var err error
		if kind.users, err = r.signupUsers(ctx, fmt.Sprintf("pages%d", i), clients); err != nil {
			return err
		}
		body, _ := json.Marshal(map[string]string{"text": kind.text})
		if err := r.seedPosts(ctx, "seed "+kind.name, kind.users, kind.seeded, body, 4); err != nil {
			return err
		}
	}
	for _, kind := range kinds {
		b := bounds{clients: clients, maxRequests: r.opts.requests1MiB, duration: r.opts.duration}
		res := r.record(r.driveServer(ctx, kind.name, b, func(ctx context.Context, w *worker, seq int64) (bool, error) {
			u := kind.users[w.id%len(kind.users)]
			cursor := base64.RawURLEncoding.EncodeToString([]byte(futureID(seq)))
			resp, err := call(ctx, r.client, w, http.MethodGet, r.server.base+"/api/v1/posts?limit=100&cursor="+cursor, u.token, nil)
			if err != nil {
				return false, err
			}
			if err := expect(resp, w, http.StatusOK); err != nil {
				return false, err
			}
			// Counting the posts and looking at the cursor is enough to check the page, and
			// costs the runner far less CPU than decoding megabytes of JSON per request.
			body := w.buf.Bytes()
			posts := bytes.Count(body, []byte(`"text":`))
			if posts != kind.perPage || bytes.HasSuffix(body, []byte(`"next_cursor":null}`+"\n")) {
				return false, fmt.Errorf("page of %d posts (%d bytes, ends %q), want %d and a next cursor",
					posts, len(body), body[max(len(body)-40, 0):], kind.perPage)
			}
			return resp.header.Get("X-Cache") != "MISS", nil
		}), false)
		r.rep.largePages = append(r.rep.largePages, res)
	}

	escaped := kinds[1]
	body, _ := json.Marshal(map[string]string{"text": escaped.text})
	b := bounds{clients: clients, maxRequests: int64(2 * clients), duration: r.opts.duration}
	res := r.record(r.driveServer(ctx, "add 1 MiB posts escaping 6x (6 MiB bodies)", b,
		func(ctx context.Context, w *worker, _ int64) (bool, error) {
			_, err := r.addPost(ctx, w, escaped.users[w.id%len(escaped.users)], body)
			return false, err
		}), false)
	r.rep.largePages = append(r.rep.largePages, res)
	return ctx.Err()
}
