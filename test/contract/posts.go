package contract

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/acme/postsvc/domain/post"
	"github.com/acme/postsvc/domain/user"
	"github.com/acme/postsvc/ports"
)

func postTests() []namedTest {
	return []namedTest{
		{"add and read back", testPostAddAndRead},
		{"text round-trips byte for byte", testPostTextRoundTrip},
		{"scoped by author", testPostScopedByAuthor},
		{"list newest first in pages", testPostListPaging},
		{"list pages end at their byte budget", testPostListByteBudget},
		{"delete by author", testPostDeleteByAuthor},
		{"author must exist", testPostAuthorMustExist},
	}
}

func testPostAddAndRead(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "author@x.io", "", user.RoleUser)
	p := addPost(t, b, u.ID(), "hello, world")
	got, err := b.Repos.Posts().ByID(ctx, u.ID(), p.ID())
	noErr(t, "ByID", err)
	if got.ID() != p.ID() || got.AuthorID() != u.ID() || got.Text() != p.Text() {
		t.Errorf("post = {%s %s %q}, want {%s %s %q}", got.ID(), got.AuthorID(), got.Text(), p.ID(), u.ID(), p.Text())
	}
	sameInstant(t, "created_at", got.CreatedAt(), p.CreatedAt())
}

func testPostTextRoundTrip(t *testing.T, b Backend) {
	ctx := t.Context()
	u := addUser(t, b, "bytes@x.io", "", user.RoleUser)
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
			p := addPost(t, b, u.ID(), c.text)
			got, err := b.Repos.Posts().ByID(ctx, u.ID(), p.ID())
			noErr(t, "ByID", err)
			if got.Text() != c.text {
				t.Fatalf("text changed: %d bytes back for %d written, first difference at byte %d",
					len(got.Text()), len(c.text), firstDiff(got.Text(), c.text))
			}
			page := listPosts(t, b, u.ID(), "", 1)
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
	owner := addUser(t, b, "owner@x.io", "", user.RoleUser)
	intruder := addUser(t, b, "intruder@x.io", "", user.RoleUser)
	p := addPost(t, b, owner.ID(), "mine")
	missing := post.ID(newID(t))

	cases := []struct {
		name   string
		author user.ID
		id     post.ID
	}{
		{"another author's post", intruder.ID(), p.ID()},
		{"a missing post", owner.ID(), missing},
		{"an unknown author", user.ID(newID(t)), p.ID()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.Repos.Posts().ByID(ctx, c.author, c.id)
			wantErr(t, "ByID", err, post.ErrNotFound)
			wantErr(t, "Delete", b.Repos.Posts().Delete(ctx, c.author, c.id), post.ErrNotFound)
		})
	}
	// The owner's post survived the other author's delete.
	got, err := b.Repos.Posts().ByID(ctx, owner.ID(), p.ID())
	noErr(t, "ByID by owner", err)
	if got.Text() != "mine" {
		t.Fatalf("text = %q", got.Text())
	}
	list := listPosts(t, b, intruder.ID(), "", 10)
	if len(list) != 0 {
		t.Fatalf("another author lists %d posts, want 0", len(list))
	}

	noErr(t, "Delete by owner", b.Repos.Posts().Delete(ctx, owner.ID(), p.ID()))
	_, err = b.Repos.Posts().ByID(ctx, owner.ID(), p.ID())
	wantErr(t, "ByID after Delete", err, post.ErrNotFound)
	wantErr(t, "second Delete", b.Repos.Posts().Delete(ctx, owner.ID(), p.ID()), post.ErrNotFound)
}

func testPostListPaging(t *testing.T, b Backend) {
	a := addUser(t, b, "a@x.io", "", user.RoleUser)
	other := addUser(t, b, "b@x.io", "", user.RoleUser)
	var mine []post.ID
	for i := range 7 {
		mine = append(mine, addPost(t, b, a.ID(), "post "+string(rune('0'+i))).ID())
		// Interleave another author's posts, which must never show up.
		addPost(t, b, other.ID(), "not yours")
	}
	want := newestFirst(mine)

	for _, limit := range []int{1, 3, 7, 100} {
		var got []post.ID
		var before post.ID
		for pages := 0; ; pages++ {
			if pages > len(mine) {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page := listPosts(t, b, a.ID(), before, limit)
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			for _, p := range page {
				if p.AuthorID() != a.ID() {
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
	page := listPosts(t, b, a.ID(), want[2], 2)
	if ids := postIDs(page); !slices.Equal(ids, want[3:5]) {
		t.Errorf("page after %s = %v, want %v", want[2], ids, want[3:5])
	}
}

func testPostDeleteByAuthor(t *testing.T, b Backend) {
	ctx := t.Context()
	a := addUser(t, b, "a@x.io", "", user.RoleUser)
	other := addUser(t, b, "b@x.io", "", user.RoleUser)
	for range 3 {
		addPost(t, b, a.ID(), "goes")
	}
	kept := addPost(t, b, other.ID(), "stays")

	noErr(t, "DeleteByAuthor", b.Repos.Posts().DeleteByAuthor(ctx, a.ID()))
	list := listPosts(t, b, a.ID(), "", 10)
	if len(list) != 0 {
		t.Fatalf("%d posts left after DeleteByAuthor", len(list))
	}
	_, err := b.Repos.Posts().ByID(ctx, other.ID(), kept.ID())
	noErr(t, "another author's post", err)
	// Deleting nothing is not an error.
	noErr(t, "DeleteByAuthor again", b.Repos.Posts().DeleteByAuthor(ctx, a.ID()))
	// The account itself is untouched.
	_, err = b.Repos.Users().ByID(ctx, a.ID())
	noErr(t, "ByID", err)
}

func testPostAuthorMustExist(t *testing.T, b Backend) {
	ctx := t.Context()
	p := makePost(t, user.ID(newID(t)), "orphan")
	if err := b.Repos.Posts().Add(ctx, p); err == nil {
		t.Fatalf("a post of an unknown author was stored")
	}
}

// testPostListByteBudget checks that a page ends before its posts' sizes pass MaxBytes, that
// the first post is taken whatever its size, that More tells whether posts follow, and that
// the repository sizes (and so reads) no post beyond the one that ends the page.
func testPostListByteBudget(t *testing.T, b Backend) {
	ctx := t.Context()
	a := addUser(t, b, "budget@x.io", "", user.RoleUser)
	// Oldest first. A text's first byte is the factor its size is multiplied by, standing in
	// for JSON escaping, which can make a text count more than its length but never less.
	texts := []string{
		strings.Repeat("1", 3000), strings.Repeat("1", 3000), strings.Repeat("1", 3000),
		strings.Repeat("6", 2000), strings.Repeat("1", 1000), strings.Repeat("1", 9000),
		strings.Repeat("2", 1500), strings.Repeat("1", 4000),
	}
	for _, text := range texts {
		addPost(t, b, a.ID(), text)
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
		list, err := b.Repos.Posts().ListByAuthor(ctx, ports.PostListQuery{
			Author: a.ID(), Before: before, Limit: 3, MaxBytes: 10000, Size: size,
		})
		noErr(t, "ListByAuthor", err)
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
