package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// largePages is one kind of large list page the memory scenarios read.
type largePages struct {
	name, upload string
	// text is every seeded post's text; perPage is how many of them a page holds: as many
	// as fit 4 MiB once JSON-encoded, at least one.
	text    string
	perPage int
	// seeded is how many posts each user gets: a page more than perPage, so every page read
	// says that another follows.
	seeded int
}

// listLargePages measures the server's peak RSS while many clients list distinct pages of
// 1 MiB posts at once: every request names a cursor no earlier one used, so each one is a
// cache miss that reads its page from MySQL. Two kinds of text: prose, where a page holds three
// posts (3 MiB of JSON), and a control character that JSON escapes six-fold (\u0001), where
// a page holds the one post it must (6 MiB of JSON). Before pages were bounded, one request
// for 100 such posts took 544 MB (1.35 GB escaped). The uploads that seed the pages are
// measured too, since an escaped upload is a 6 MiB body. The target is a peak below 512 MiB.
func (r *runner) listLargePages(ctx context.Context) error {
	clients := r.opts.clients1MiB
	for i, kind := range []largePages{
		{name: "list pages of 1 MiB posts", upload: "add 1 MiB posts (seeding the pages)", text: prose(1 << 20), perPage: 3, seeded: 4},
		{
			name: "list pages of 1 MiB posts escaping 6x", upload: "add 1 MiB posts escaping 6x (6 MiB bodies)",
			text: strings.Repeat("\x01", 1<<20), perPage: 1, seeded: 2,
		},
	} {
		users, err := r.signupUsers(ctx, fmt.Sprintf("pages%d", i), clients)
		if err != nil {
			return err
		}
		// The seeding is a memory scenario of its own: as many clients upload at once, and the
		// escaped text makes each body 6 MiB of JSON.
		body, _ := json.Marshal(map[string]string{"text": kind.text})
		total := int64(len(users) * kind.seeded)
		seeded := r.record(r.driveServer(ctx, kind.upload, bounds{clients: clients, maxRequests: total, duration: 10 * time.Minute},
			func(ctx context.Context, w *worker, seq int64) (bool, error) {
				// 64 uploads of 1 MiB at once outrun what MySQL on two shared cores writes
				// within the 5 s request timeout, and the service answers the slowest 503
				// with Retry-After, as it should. The pages need every post, so the upload
				// is retried, as a client honouring Retry-After would; odd marks it.
				var err error
				for attempt := range 3 {
					if _, err = r.addPost(ctx, w, users[seq%int64(len(users))], body); err == nil || !strings.Contains(err.Error(), "status 503") {
						return attempt > 0, err
					}
				}
				return true, err
			}), false)
		r.rep.largePages = append(r.rep.largePages, seeded)
		if err := seedErr(seeded, total); err != nil {
			return err
		}
		b := bounds{clients: clients, maxRequests: r.opts.requests1MiB, duration: r.opts.duration}
		res := r.record(r.driveServer(ctx, kind.name, b, func(ctx context.Context, w *worker, seq int64) (bool, error) {
			u := users[w.id%len(users)]
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
	return ctx.Err()
}
