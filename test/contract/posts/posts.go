package posts

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	postsapp "github.com/acme/postsvc/application/posts"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/posts/post"
	port "github.com/acme/postsvc/ports/posts"
	"github.com/acme/postsvc/test/contract"
)

// Tests is the posts repository contract.
func Tests() []contract.Group[Backend] {
	return []contract.Group[Backend]{{Name: "posts", Tests: []contract.Test[Backend]{
		{Name: "add and read back", Run: testPostAddAndRead},
		{Name: "text round-trips byte for byte", Run: testPostTextRoundTrip},
		{Name: "scoped by author", Run: testPostScopedByAuthor},
		{Name: "list newest first in pages", Run: testPostListPaging},
		{Name: "list pages end at their byte budget", Run: testPostListByteBudget},
		{Name: "list pages within their bound are not measured", Run: testPostListUnmeasured},
		{Name: "delete by author", Run: testPostDeleteByAuthor},
		{Name: "author must exist", Run: testPostAuthorMustExist},
		{Name: "malformed ids are not found", Run: testPostMalformedIDs},
	}}, {Name: "quota", Tests: []contract.Test[Backend]{
		{Name: "an add past the quota stores nothing", Run: testPostQuotaRefusesWhatPassesIt},
		{Name: "deletes give their bytes back", Run: testPostQuotaDeletesGiveBytesBack},
		{Name: "concurrent adds never pass it together", Run: testPostQuotaHoldsUnderConcurrentAdds},
	}}}
}

func testPostAddAndRead(t *testing.T, b Backend) {
	ctx := t.Context()
	u := b.NewUser(t)
	p := addPost(t, b, u, "hello, world")
	got, err := b.Posts().ByID(ctx, u, p.ID())
	contract.NoErr(t, "ByID", err)
	if got.ID() != p.ID() || got.AuthorID() != u || got.Text() != p.Text() {
		t.Errorf("post = {%s %s %q}, want {%s %s %q}", got.ID(), got.AuthorID(), got.Text(), p.ID(), u, p.Text())
	}
	contract.SameInstant(t, "created_at", got.CreatedAt(), p.CreatedAt())
	// The list reads the timestamp its own way (gormstore.Timestamp): the same instant.
	listed := listPosts(t, b, u, "", 1)
	if len(listed) != 1 || listed[0].ID() != p.ID() {
		t.Fatalf("list = %v, want [%s]", postIDs(listed), p.ID())
	}
	contract.SameInstant(t, "listed created_at", listed[0].CreatedAt(), p.CreatedAt())
	if !listed[0].CreatedAt().Equal(got.CreatedAt()) {
		t.Errorf("listed created_at %s, read by id %s: want the same", listed[0].CreatedAt().Format(time.RFC3339Nano), got.CreatedAt().Format(time.RFC3339Nano))
	}
}

func testPostTextRoundTrip(t *testing.T, b Backend) {
	ctx := t.Context()
	u := b.NewUser(t)
	cases := []struct {
		name string
		text string
	}{
		{"1 MiB of 1-byte characters", strings.Repeat("a", post.MaxTextBytes)},
		{"1 MiB of 4-byte characters", strings.Repeat("😀", post.MaxTextBytes/4)},
		{"1 MiB of mixed widths", strings.Repeat("aé€😀", post.MaxTextBytes/10)},
		{"surrounding whitespace and line ends", "  \r\n\tindented\r\nline  \n\n  "},
		{"NUL and control characters", "before\x00after\x01\x1f\x7f end"},
		{"combining and zero-width characters", "e\u0301 \u200b\u200d👩\u200d💻 \ufeff"},
		{"SQL and escape characters", `'; DROP TABLE posts; -- \' \\ %_ "quoted"`},
		// Every byte needs escaping when the MySQL driver interpolates arguments, so the
		// statement doubles to 2 MiB: this is the case where it must stay correct.
		{"1 MiB of quotes, backslashes and NULs", strings.Repeat("'\\\x00\"", post.MaxTextBytes/4)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := post.ValidateText(c.text); err != nil {
				t.Fatalf("test text is not a valid post: %v", err)
			}
			p := addPost(t, b, u, c.text)
			got, err := b.Posts().ByID(ctx, u, p.ID())
			contract.NoErr(t, "ByID", err)
			if got.Text() != c.text {
				t.Fatalf("text changed: %d bytes back for %d written, first difference at byte %d",
					len(got.Text()), len(c.text), firstDiff(got.Text(), c.text))
			}
			page := listPosts(t, b, u, "", 1)
			if len(page) != 1 || page[0].Text() != c.text {
				t.Fatalf("the listed post does not carry the exact text")
			}
		})
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func testPostScopedByAuthor(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	intruder := b.NewUser(t)
	p := addPost(t, b, owner, "mine")
	missing := post.ID(contract.NewID(t))

	cases := []struct {
		name   string
		author identity.UserID
		id     post.ID
	}{
		{"another author's post", intruder, p.ID()},
		{"a missing post", owner, missing},
		{"an unknown author", identity.UserID(contract.NewID(t)), p.ID()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.Posts().ByID(ctx, c.author, c.id)
			contract.WantErr(t, "ByID", err, post.ErrNotFound)
			contract.WantErr(t, "Delete", b.Posts().Delete(ctx, c.author, c.id), post.ErrNotFound)
		})
	}
	// The owner's post survived the other author's delete.
	got, err := b.Posts().ByID(ctx, owner, p.ID())
	contract.NoErr(t, "ByID by owner", err)
	if got.Text() != "mine" {
		t.Fatalf("text = %q", got.Text())
	}
	list := listPosts(t, b, intruder, "", 10)
	if len(list) != 0 {
		t.Fatalf("another author lists %d posts, want 0", len(list))
	}

	contract.NoErr(t, "Delete by owner", b.Posts().Delete(ctx, owner, p.ID()))
	_, err = b.Posts().ByID(ctx, owner, p.ID())
	contract.WantErr(t, "ByID after Delete", err, post.ErrNotFound)
	contract.WantErr(t, "second Delete", b.Posts().Delete(ctx, owner, p.ID()), post.ErrNotFound)
}

func testPostListPaging(t *testing.T, b Backend) {
	a := b.NewUser(t)
	other := b.NewUser(t)
	var mine []post.ID
	for i := range 7 {
		mine = append(mine, addPost(t, b, a, "post "+string(rune('0'+i))).ID())
		// Interleave another author's posts, which must never show up.
		addPost(t, b, other, "not yours")
	}
	want := contract.NewestFirst(mine)

	for _, limit := range []int{1, 3, 7, 100} {
		var got []post.ID
		var before post.ID
		for pages := 0; ; pages++ {
			if pages > len(mine) {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page := listPosts(t, b, a, before, limit)
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			for _, p := range page {
				if p.AuthorID() != a {
					t.Fatalf("limit %d: listed a post of %s", limit, p.AuthorID())
				}
			}
			if len(page) == 0 {
				break
			}
			got = append(got, postIDs(page)...)
			before = page[len(page)-1].ID()
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: pages gave %v, want each of %v once, newest first", limit, got, want)
		}
	}

	// A cursor in the middle starts strictly below it.
	page := listPosts(t, b, a, want[2], 2)
	if ids := postIDs(page); !slices.Equal(ids, want[3:5]) {
		t.Errorf("page after %s = %v, want %v", want[2], ids, want[3:5])
	}
}

func testPostDeleteByAuthor(t *testing.T, b Backend) {
	ctx := t.Context()
	a := b.NewUser(t)
	other := b.NewUser(t)
	for range 3 {
		addPost(t, b, a, "goes")
	}
	kept := addPost(t, b, other, "stays")

	contract.NoErr(t, "DeleteByAuthor", b.Posts().DeleteByAuthor(ctx, a))
	list := listPosts(t, b, a, "", 10)
	if len(list) != 0 {
		t.Fatalf("%d posts left after DeleteByAuthor", len(list))
	}
	_, err := b.Posts().ByID(ctx, other, kept.ID())
	contract.NoErr(t, "another author's post", err)
	// Deleting nothing is not an error.
	contract.NoErr(t, "DeleteByAuthor again", b.Posts().DeleteByAuthor(ctx, a))
	// The account itself is untouched.

}

func testPostAuthorMustExist(t *testing.T, b Backend) {
	ctx := t.Context()
	p := makePost(t, identity.UserID(contract.NewID(t)), "orphan")
	if err := b.Posts().Add(ctx, p, postsapp.DefaultQuotaBytes); err == nil {
		t.Fatalf("a post of an unknown author was stored")
	}
}

// testPostListByteBudget checks that a page ends before its posts' sizes pass MaxBytes, that
// the first post is taken whatever its size, that More tells whether posts follow, and that
// the repository sizes (and so reads) no post beyond the one that ends the page.
func testPostListByteBudget(t *testing.T, b Backend) {
	ctx := t.Context()
	a := b.NewUser(t)
	// Oldest first. A text's first byte is the factor its size is multiplied by, standing in
	// for JSON escaping, which can make a text count more than its length but never less.
	texts := []string{
		strings.Repeat("1", 3000), strings.Repeat("1", 3000), strings.Repeat("1", 3000),
		strings.Repeat("6", 2000), strings.Repeat("1", 1000), strings.Repeat("1", 9000),
		strings.Repeat("2", 1500), strings.Repeat("1", 4000),
	}
	for _, text := range texts {
		addPost(t, b, a, text)
	}
	var sized []int64
	size := func(p *post.Post) int64 {
		n := int64(len(p.Text())) * int64(p.Text()[0]-'0')
		sized = append(sized, n)
		return n
	}
	var (
		pages  [][]int64
		before post.ID
	)
	for range len(texts) + 1 {
		sized = nil
		list, err := b.Posts().ListByAuthor(ctx, port.PostListQuery{
			Author: a, Before: before, Limit: 3, MaxBytes: 10000, Size: size,
		})
		contract.NoErr(t, "ListByAuthor", err)
		var got []int64
		for _, p := range list.Posts {
			got = append(got, int64(len(p.Text()))*int64(p.Text()[0]-'0'))
		}
		if len(sized) > len(got)+1 {
			t.Fatalf("page %v: sized %v, more posts than the page and the one that ended it", got, sized)
		}
		pages = append(pages, got)
		if !list.More {
			break
		}
		if len(list.Posts) == 0 {
			t.Fatal("an empty page says more posts follow")
		}
		before = list.Posts[len(list.Posts)-1].ID()
	}
	// Newest first: 4000+3000 (the 9000 after them would pass 10000); 9000+1000; 12000 alone;
	// 3000+3000+3000 (the limit).
	want := "[[4000 3000] [9000 1000] [12000] [3000 3000 3000]]"
	if fmt.Sprint(pages) != want {
		t.Fatalf("pages %v, want %s", pages, want)
	}
}

// testPostListUnmeasured checks that a page whose posts' MaxSize bounds fit MaxBytes
// together is taken without sizing a post (Size walks every text), and that one whose bounds
// do not is still sized and ends at its budget.
func testPostListUnmeasured(t *testing.T, b Backend) {
	ctx := t.Context()
	a := b.NewUser(t)
	for range 5 {
		addPost(t, b, a, strings.Repeat("x", 1000))
	}
	sized := 0
	size := func(p *post.Post) int64 { sized++; return int64(len(p.Text())) * 2 }
	bound := func(_ post.ID, textBytes int64) int64 { return textBytes * 2 }
	for _, c := range []struct {
		maxBytes         int64
		wantPosts        int
		wantMore, sizing bool
	}{
		{maxBytes: 8000, wantPosts: 4, wantMore: true}, // four bounds of 2000 fit exactly
		{maxBytes: 7999, wantPosts: 3, wantMore: true, sizing: true},
		{maxBytes: 0, wantPosts: 4, wantMore: true}, // no budget: nothing to measure
	} {
		sized = 0
		list, err := b.Posts().ListByAuthor(ctx, port.PostListQuery{
			Author: a, Limit: 4, MaxBytes: c.maxBytes, Size: size, MaxSize: bound,
		})
		contract.NoErr(t, "ListByAuthor", err)
		if len(list.Posts) != c.wantPosts || list.More != c.wantMore {
			t.Errorf("MaxBytes %d: %d posts, more %v; want %d, more %v", c.maxBytes, len(list.Posts), list.More, c.wantPosts, c.wantMore)
		}
		if (sized > 0) != c.sizing {
			t.Errorf("MaxBytes %d: Size called %d times, want sizing %v", c.maxBytes, sized, c.sizing)
		}
	}
}

// testPostMalformedIDs looks up ids that storage could choke on (invalid UTF-8, longer than
// any id column, non-ASCII, empty): they come straight from URLs, and must read as "not
// found", never as a storage error.
func testPostMalformedIDs(t *testing.T, b Backend) {
	ctx := t.Context()
	u := b.NewUser(t)
	addPost(t, b, u, "a post")
	for _, id := range []string{"\xff\xfe\xfd", strings.Repeat("7", 100), "é-ü-😀", ""} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			_, err := b.Posts().ByID(ctx, u, post.ID(id))
			contract.WantErr(t, "posts ByID", err, post.ErrNotFound)
			contract.WantErr(t, "posts Delete", b.Posts().Delete(ctx, u, post.ID(id)), post.ErrNotFound)
			if list := listPosts(t, b, identity.UserID(id), "", 10); len(list) != 0 {
				t.Errorf("ListByAuthor of a malformed author returned %d posts", len(list))
			}
		})
	}
}
