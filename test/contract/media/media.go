package media

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	mediaport "github.com/acme/postsvc/ports/media"
	"github.com/acme/postsvc/test/contract"
)

// errBoom is a failure of the function run in a unit of work, unrelated to storage.
var errBoom = errors.New("boom")

// Tests is the image repository contract.
func Tests() []contract.Group[Backend] {
	return []contract.Group[Backend]{
		{Name: "add", Tests: []contract.Test[Backend]{
			{Name: "add and read back", Run: testAddAndRead},
			{Name: "an upload's images in one call", Run: testAddMany},
			{Name: "a large add is all or nothing", Run: testAddAllOrNothing},
			{Name: "the owner must exist", Run: testUnknownOwner},
			{Name: "images of two owners in one call store nothing", Run: testMixedOwners},
			{Name: "a rolled-back unit of work leaves nothing", Run: testAddRollback},
		}},
		{Name: "read", Tests: []contract.Test[Backend]{
			{Name: "unknown and malformed ids are not found", Run: testGetMissing},
			{Name: "owned keeps the owner's images only", Run: testOwned},
			{Name: "existing", Run: testExisting},
		}},
		{Name: "change", Tests: []contract.Test[Backend]{
			{Name: "update details and search document", Run: testUpdate},
			{Name: "update of a gone or another owner's image", Run: testUpdateMissing},
			{Name: "mark thumbnail", Run: testMarkThumbnail},
		}},
		{Name: "delete", Tests: []contract.Test[Backend]{
			{Name: "delete is scoped by owner and counts", Run: testDelete},
			{Name: "delete by owner", Run: testDeleteByOwner},
			{Name: "deleting the user takes its images", Run: testUserDeletionCascades},
		}},
		{Name: "list", Tests: []contract.Test[Backend]{
			{Name: "newest first in pages", Run: testListPaging},
			{Name: "an owner sees only their images, filtered by visibility", Run: testListOwner},
			{Name: "the public listing holds everyone's public images only", Run: testListPublic},
			{Name: "no limit, no images", Run: testListZeroLimit},
		}},
		{Name: "quota", Tests: []contract.Test[Backend]{
			{Name: "the sum of the owner's bytes", Run: testQuotaSum},
			{Name: "an unknown owner", Run: testQuotaUnknownOwner},
			{Name: "the sum on the pool does not wait for the owner's lock", Run: testQuotaOnThePoolDoesNotWait},
			{Name: "concurrent uploads of one owner never pass the limit", Run: testQuotaConcurrent},
		}},
		{Name: "search", Tests: searchTests()},
	}
}

func testAddAndRead(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	// 257 bytes; the stem is cut at a character boundary and ".png" kept: 255 bytes.
	long := "a" + strings.Repeat("é", 126) + ".png"
	cases := []*image.Image{
		makeImage(t, owner, "photo.png", details(t, image.Private, ""), 1),
		makeImage(t, owner, long, details(t, image.Public, "Un café ☕ au lait\nsur la 😀 table", "été", "a_b-1", "Cat"), 20<<20),
		makeImage(t, owner, "x.gif", details(t, image.Private, strings.Repeat("界", image.MaxDescriptionChars)), 1<<40),
	}
	many := make([]string, image.MaxTags)
	for i := range many {
		many[i] = fmt.Sprintf("%02d%s", i, strings.Repeat("t", image.MaxTagChars-2))
	}
	cases = append(cases, makeImage(t, owner, "tags.webp", details(t, image.Public, "many tags", many...), 7))
	for _, img := range cases {
		contract.NoErr(t, "Add", b.Images().Add(ctx, []*image.Image{img}))
		got, err := b.Images().Get(ctx, img.ID())
		contract.NoErr(t, "Get", err)
		assertSameImage(t, got, img)
		if got.HasThumbnail() {
			t.Error("a new image has a thumbnail")
		}
	}
	if n := len(cases[1].Filename()); n != 255 {
		t.Fatalf("test file name is %d bytes, want 255", n)
	}
}

func testAddMany(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	imgs := make([]*image.Image, 50)
	for i := range imgs {
		imgs[i] = makeImage(t, owner, fmt.Sprintf("f%d.png", i), details(t, image.Private, "batch"), int64(i+1))
	}
	contract.NoErr(t, "Add", b.Images().Add(ctx, imgs))
	got, err := b.Images().Owned(ctx, owner, idsOf(imgs))
	contract.NoErr(t, "Owned", err)
	if !slices.Equal(sortedIDs(got), sortedIDs(imgs)) {
		t.Fatalf("%d of 50 images stored", len(got))
	}
	if n := used(t, b, owner); n != 50*51/2 {
		t.Fatalf("used = %d, want %d", n, 50*51/2)
	}
	contract.NoErr(t, "Add of nothing", b.Images().Add(ctx, nil))
}

// testAddAllOrNothing adds more images than one statement takes, the last of them one that is
// already stored: nothing of the call may stay.
func testAddAllOrNothing(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	stored := addImage(t, b, owner, "stored.png", details(t, image.Private, ""), 1)
	imgs := make([]*image.Image, 250)
	for i := range imgs {
		imgs[i] = makeImage(t, owner, fmt.Sprintf("f%d.png", i), details(t, image.Private, ""), 1)
	}
	if err := b.Images().Add(ctx, append(imgs, stored)); err == nil {
		t.Fatal("Add of an image already stored succeeded")
	}
	found, err := b.Images().Existing(ctx, idsOf(imgs))
	contract.NoErr(t, "Existing", err)
	if len(found) != 0 {
		t.Fatalf("%d images of a failed Add stayed", len(found))
	}
	if n := used(t, b, owner); n != 1 {
		t.Fatalf("used = %d after a failed Add, want 1", n)
	}
}

func testUnknownOwner(t *testing.T, b Backend) {
	ctx := t.Context()
	img := makeImage(t, identity.UserID(contract.NewID(t)), "a.png", details(t, image.Private, ""), 1)
	contract.WantErr(t, "Add for an unknown owner", b.Images().Add(ctx, []*image.Image{img}), identity.ErrUnknownUser)
	_, err := b.Images().Get(ctx, img.ID())
	contract.WantErr(t, "Get", err, image.ErrNotFound)
}

func testMixedOwners(t *testing.T, b Backend) {
	ctx := t.Context()
	one, two := b.NewUser(t), b.NewUser(t)
	imgs := []*image.Image{
		makeImage(t, one, "a.png", details(t, image.Private, ""), 1),
		makeImage(t, two, "b.png", details(t, image.Private, ""), 1),
	}
	if err := b.Images().Add(ctx, imgs); err == nil {
		t.Fatal("Add of two owners' images succeeded")
	}
	found, err := b.Images().Existing(ctx, idsOf(imgs))
	contract.NoErr(t, "Existing", err)
	if len(found) != 0 {
		t.Fatalf("%d images stored", len(found))
	}
}

func testAddRollback(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	img := makeImage(t, owner, "a.png", details(t, image.Public, "rolled back"), 10)
	err := b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		repo := b.Store.Images(tx)
		if _, err := repo.LockOwner(ctx, owner); err != nil {
			return err
		}
		if err := repo.Add(ctx, []*image.Image{img}); err != nil {
			return err
		}
		if _, err := repo.Get(ctx, img.ID()); err != nil {
			return fmt.Errorf("the transaction does not see its own image: %w", err)
		}
		return errBoom
	})
	contract.WantErr(t, "Do", err, errBoom)
	_, err = b.Images().Get(ctx, img.ID())
	contract.WantErr(t, "Get after rollback", err, image.ErrNotFound)
	if n := used(t, b, owner); n != 0 {
		t.Fatalf("used = %d after rollback", n)
	}
	if ids := listAll(t, b, mediaport.ListQuery{}, 10); len(ids) != 0 {
		t.Fatalf("public listing after rollback = %v", ids)
	}
	q, _ := image.ParseQuery("rolled")
	if ids := listAll(t, b, mediaport.ListQuery{Owner: owner, Search: q}, 10); len(ids) != 0 {
		t.Fatalf("search after rollback = %v", ids)
	}
}

func testGetMissing(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	addImage(t, b, owner, "a.png", details(t, image.Public, ""), 1)
	for _, id := range []string{contract.NewID(t), "", "../x", "a b", strings.Repeat("a", 65), "é", "x'; --"} {
		_, err := b.Images().Get(ctx, image.ID(id))
		contract.WantErr(t, fmt.Sprintf("Get(%q)", id), err, image.ErrNotFound)
	}
}

func testOwned(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, other := b.NewUser(t), b.NewUser(t)
	mine := []*image.Image{
		addImage(t, b, owner, "a.png", details(t, image.Private, ""), 1),
		addImage(t, b, owner, "b.png", details(t, image.Public, ""), 1),
	}
	theirs := addImage(t, b, other, "c.png", details(t, image.Public, ""), 1)
	addImage(t, b, owner, "not asked.png", details(t, image.Public, ""), 1)
	ask := []image.ID{mine[1].ID(), theirs.ID(), image.ID(contract.NewID(t)), "../bad", mine[0].ID(), mine[1].ID()}
	got, err := b.Images().Owned(ctx, owner, ask)
	contract.NoErr(t, "Owned", err)
	if !slices.Equal(sortedIDs(got), sortedIDs(mine)) {
		t.Fatalf("Owned = %v, want %v", sortedIDs(got), sortedIDs(mine))
	}
	for _, img := range got {
		want := mine[0]
		if img.ID() == mine[1].ID() {
			want = mine[1]
		}
		assertSameImage(t, img, want)
	}
	got, err = b.Images().Owned(ctx, owner, nil)
	contract.NoErr(t, "Owned of no ids", err)
	if len(got) != 0 {
		t.Fatalf("Owned of no ids = %d images", len(got))
	}
}

func testExisting(t *testing.T, b Backend) {
	ctx := t.Context()
	one, two := b.NewUser(t), b.NewUser(t)
	a := addImage(t, b, one, "a.png", details(t, image.Private, ""), 1)
	c := addImage(t, b, two, "c.png", details(t, image.Private, ""), 1)
	gone := addImage(t, b, one, "gone.png", details(t, image.Private, ""), 1)
	n, err := b.Images().Delete(ctx, one, []image.ID{gone.ID()})
	contract.NoErr(t, "Delete", err)
	if n != 1 {
		t.Fatalf("Delete removed %d", n)
	}
	ask := []image.ID{a.ID(), c.ID(), gone.ID(), image.ID(contract.NewID(t)), "not/an/id"}
	// The sweep asks about many ids at once.
	for range 1200 {
		ask = append(ask, image.ID(contract.NewID(t)))
	}
	found, err := b.Images().Existing(ctx, ask)
	contract.NoErr(t, "Existing", err)
	if len(found) != 2 || !found[a.ID()] || !found[c.ID()] {
		t.Fatalf("Existing = %v, want %s and %s", found, a.ID(), c.ID())
	}
}

func testUpdate(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	img := addImage(t, b, owner, "holiday.png", details(t, image.Private, "old words", "before"), 5)
	kept := addImage(t, b, owner, "other.png", details(t, image.Private, "old words"), 5)
	change, err := image.ParseChange(image.DetailsDraft{Visibility: ptr("public"), Description: ptr("New Café"), Tags: ptr([]string{"After"})})
	contract.NoErr(t, "ParseChange", err)
	img.Update(change)
	contract.NoErr(t, "Update", b.Images().Update(ctx, img))
	got, err := b.Images().Get(ctx, img.ID())
	contract.NoErr(t, "Get", err)
	assertSameImage(t, got, img)
	if d := got.Details(); d.Visibility != image.Public || d.Description != "New Café" || !slices.Equal(d.Tags, []string{"after"}) {
		t.Fatalf("details = %+v", d)
	}
	for q, want := range map[string][]image.ID{
		"cafe": {img.ID()}, "after": {img.ID()}, "holiday": {img.ID()},
		"old": {kept.ID()}, "before": nil, "words": {kept.ID()},
	} {
		assertSearch(t, b, mediaport.ListQuery{Owner: owner}, q, want)
	}
	if ids := listAll(t, b, mediaport.ListQuery{}, 10); !slices.Equal(ids, []image.ID{img.ID()}) {
		t.Fatalf("public listing = %v, want the image made public", ids)
	}

	// An update that changes nothing still finds its row; so does one that removes the tags.
	contract.NoErr(t, "Update unchanged", b.Images().Update(ctx, img))
	change, err = image.ParseChange(image.DetailsDraft{Tags: ptr([]string{})})
	contract.NoErr(t, "ParseChange", err)
	img.Update(change)
	contract.NoErr(t, "Update without tags", b.Images().Update(ctx, img))
	got, err = b.Images().Get(ctx, img.ID())
	contract.NoErr(t, "Get", err)
	assertSameImage(t, got, img)
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, "after", nil)
}

func ptr[T any](v T) *T { return &v }

func testUpdateMissing(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, other := b.NewUser(t), b.NewUser(t)
	gone := makeImage(t, owner, "gone.png", details(t, image.Private, ""), 1)
	contract.WantErr(t, "Update of an image never stored", b.Images().Update(ctx, gone), image.ErrNotFound)

	img := addImage(t, b, owner, "mine.png", details(t, image.Private, "mine"), 1)
	// The same id claimed by another owner, as a confused caller might build it.
	stolen := image.Rehydrate(img.ID(), other, img.Filename(), img.Content(), details(t, image.Public, "stolen"), false, img.CreatedAt())
	contract.WantErr(t, "Update as another owner", b.Images().Update(ctx, stolen), image.ErrNotFound)
	got, err := b.Images().Get(ctx, img.ID())
	contract.NoErr(t, "Get", err)
	assertSameImage(t, got, img)

	_, err = b.Images().Delete(ctx, owner, []image.ID{img.ID()})
	contract.NoErr(t, "Delete", err)
	contract.WantErr(t, "Update of a deleted image", b.Images().Update(ctx, img), image.ErrNotFound)
}

func testMarkThumbnail(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	img := addImage(t, b, owner, "a.png", details(t, image.Public, "thumb"), 1)
	other := addImage(t, b, owner, "b.png", details(t, image.Public, "thumb"), 1)
	contract.NoErr(t, "MarkThumbnail", b.Images().MarkThumbnail(ctx, img.ID()))
	contract.NoErr(t, "MarkThumbnail again", b.Images().MarkThumbnail(ctx, img.ID()))
	got, err := b.Images().Get(ctx, img.ID())
	contract.NoErr(t, "Get", err)
	if !got.HasThumbnail() {
		t.Fatal("the thumbnail is not recorded")
	}
	got, err = b.Images().Get(ctx, other.ID())
	contract.NoErr(t, "Get", err)
	if got.HasThumbnail() {
		t.Fatal("another image got a thumbnail")
	}
	assertSearch(t, b, mediaport.ListQuery{Owner: owner}, "thumb", []image.ID{other.ID(), img.ID()})
	for _, id := range []image.ID{image.ID(contract.NewID(t)), "../bad"} {
		contract.WantErr(t, "MarkThumbnail of a missing image", b.Images().MarkThumbnail(ctx, id), image.ErrNotFound)
	}
	// A thumbnail made while its image was deleted: the row decides, and says it is gone.
	_, err = b.Images().Delete(ctx, owner, []image.ID{other.ID()})
	contract.NoErr(t, "Delete", err)
	contract.WantErr(t, "MarkThumbnail of a deleted image", b.Images().MarkThumbnail(ctx, other.ID()), image.ErrNotFound)
}

func testDelete(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, other := b.NewUser(t), b.NewUser(t)
	a := addImage(t, b, owner, "a.png", details(t, image.Public, "delete me"), 3)
	c := addImage(t, b, owner, "c.png", details(t, image.Private, "delete me"), 4)
	kept := addImage(t, b, owner, "kept.png", details(t, image.Public, "delete me"), 5)
	theirs := addImage(t, b, other, "theirs.png", details(t, image.Public, "delete me"), 6)
	n, err := b.Images().Delete(ctx, owner, []image.ID{a.ID(), theirs.ID(), c.ID(), a.ID(), image.ID(contract.NewID(t)), "../x"})
	contract.NoErr(t, "Delete", err)
	if n != 2 {
		t.Fatalf("Delete removed %d, want 2", n)
	}
	for _, img := range []*image.Image{a, c} {
		_, err := b.Images().Get(ctx, img.ID())
		contract.WantErr(t, "Get of a deleted image", err, image.ErrNotFound)
	}
	for _, img := range []*image.Image{kept, theirs} {
		got, err := b.Images().Get(ctx, img.ID())
		contract.NoErr(t, "Get of a kept image", err)
		assertSameImage(t, got, img)
	}
	n, err = b.Images().Delete(ctx, owner, []image.ID{a.ID()})
	contract.NoErr(t, "Delete again", err)
	if n != 0 {
		t.Fatalf("Delete of a deleted image removed %d", n)
	}
	if n, err = b.Images().Delete(ctx, owner, nil); err != nil || n != 0 {
		t.Fatalf("Delete of no ids = %d, %v", n, err)
	}
	assertSearch(t, b, mediaport.ListQuery{}, "delete", []image.ID{theirs.ID(), kept.ID()})
	if u := used(t, b, owner); u != 5 {
		t.Fatalf("used = %d after delete, want 5", u)
	}
}

func testDeleteByOwner(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, other := b.NewUser(t), b.NewUser(t)
	var mine []*image.Image
	for i := range 5 {
		mine = append(mine, addImage(t, b, owner, fmt.Sprintf("%d.png", i), details(t, image.Public, "bulk"), 1))
	}
	theirs := addImage(t, b, other, "theirs.png", details(t, image.Public, "bulk"), 1)
	contract.NoErr(t, "DeleteByOwner", b.Images().DeleteByOwner(ctx, owner))
	found, err := b.Images().Existing(ctx, idsOf(append(mine, theirs)))
	contract.NoErr(t, "Existing", err)
	if len(found) != 1 || !found[theirs.ID()] {
		t.Fatalf("Existing after DeleteByOwner = %v, want only the other owner's", found)
	}
	assertSearch(t, b, mediaport.ListQuery{}, "bulk", []image.ID{theirs.ID()})
	if u := used(t, b, owner); u != 0 {
		t.Fatalf("used = %d", u)
	}
	contract.NoErr(t, "DeleteByOwner with nothing left", b.Images().DeleteByOwner(ctx, owner))
}

func testUserDeletionCascades(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, other := b.NewUser(t), b.NewUser(t)
	gone := []*image.Image{
		addImage(t, b, owner, "a.png", details(t, image.Public, "cascade"), 1),
		addImage(t, b, owner, "b.png", details(t, image.Private, "cascade"), 1),
	}
	kept := addImage(t, b, other, "c.png", details(t, image.Public, "cascade"), 1)
	b.DeleteUser(t, owner)
	for _, img := range gone {
		_, err := b.Images().Get(ctx, img.ID())
		contract.WantErr(t, "Get of a deleted user's image", err, image.ErrNotFound)
	}
	assertSearch(t, b, mediaport.ListQuery{}, "cascade", []image.ID{kept.ID()})
	if ids := listAll(t, b, mediaport.ListQuery{}, 10); !slices.Equal(ids, []image.ID{kept.ID()}) {
		t.Fatalf("public listing = %v", ids)
	}
	img := makeImage(t, owner, "late.png", details(t, image.Private, ""), 1)
	contract.WantErr(t, "Add for a deleted user", b.Images().Add(ctx, []*image.Image{img}), identity.ErrUnknownUser)
	// The search index follows the cascade: a new image with the same words is found alone.
	late := addImage(t, b, other, "d.png", details(t, image.Private, "cascade"), 1)
	assertSearch(t, b, mediaport.ListQuery{Owner: other}, "cascade", []image.ID{late.ID(), kept.ID()})
}

func testListPaging(t *testing.T, b Backend) {
	owner := b.NewUser(t)
	var want []image.ID
	for i := range 7 {
		want = append(want, addImage(t, b, owner, fmt.Sprintf("%d.png", i), details(t, image.Private, ""), 1).ID())
	}
	want = contract.NewestFirst(want)
	for _, limit := range []int{1, 3, 7, 8, 100} {
		if got := listAll(t, b, mediaport.ListQuery{Owner: owner}, limit); !slices.Equal(got, want) {
			t.Fatalf("limit %d: listed %v, want %v", limit, got, want)
		}
	}
	page, err := b.Images().List(t.Context(), mediaport.ListQuery{Owner: owner, Limit: 3})
	contract.NoErr(t, "List", err)
	if !page.More || !slices.Equal(idsOf(page.Images), want[:3]) {
		t.Fatalf("first page = %v more %v", idsOf(page.Images), page.More)
	}
	// A cursor that names no image still pages from where it sorts.
	page, err = b.Images().List(t.Context(), mediaport.ListQuery{Owner: owner, Limit: 2, Before: want[3] + "0"})
	contract.NoErr(t, "List", err)
	if !page.More || !slices.Equal(idsOf(page.Images), want[3:5]) {
		t.Fatalf("page below %s0 = %v more %v, want %v", want[3], idsOf(page.Images), page.More, want[3:5])
	}
	page, err = b.Images().List(t.Context(), mediaport.ListQuery{Owner: owner, Limit: 5, Before: want[6]})
	contract.NoErr(t, "List", err)
	if page.More || len(page.Images) != 0 || page.Images == nil {
		t.Fatalf("page below the oldest = %v more %v, want an empty list", idsOf(page.Images), page.More)
	}
	// A page added to while paging stays stable: newer images sort above the cursor.
	addImage(t, b, owner, "new.png", details(t, image.Private, ""), 1)
	page, err = b.Images().List(t.Context(), mediaport.ListQuery{Owner: owner, Limit: 3, Before: want[2]})
	contract.NoErr(t, "List", err)
	if !slices.Equal(idsOf(page.Images), want[3:6]) {
		t.Fatalf("page after an add = %v, want %v", idsOf(page.Images), want[3:6])
	}
}

func testListOwner(t *testing.T, b Backend) {
	owner, other := b.NewUser(t), b.NewUser(t)
	var private, public []image.ID
	for i := range 6 {
		vis := image.Private
		if i%2 == 1 {
			vis = image.Public
		}
		id := addImage(t, b, owner, fmt.Sprintf("%d.png", i), details(t, vis, ""), 1).ID()
		if vis == image.Public {
			public = append(public, id)
		} else {
			private = append(private, id)
		}
		addImage(t, b, other, fmt.Sprintf("other-%d.png", i), details(t, vis, ""), 1)
	}
	all := contract.NewestFirst(append(slices.Clone(private), public...))
	if got := listAll(t, b, mediaport.ListQuery{Owner: owner}, 4); !slices.Equal(got, all) {
		t.Fatalf("owner's listing = %v, want %v", got, all)
	}
	if got := listAll(t, b, mediaport.ListQuery{Owner: owner, Visibility: image.Private}, 2); !slices.Equal(got, contract.NewestFirst(private)) {
		t.Fatalf("owner's private listing = %v, want %v", got, contract.NewestFirst(private))
	}
	if got := listAll(t, b, mediaport.ListQuery{Owner: owner, Visibility: image.Public}, 2); !slices.Equal(got, contract.NewestFirst(public)) {
		t.Fatalf("owner's public listing = %v, want %v", got, contract.NewestFirst(public))
	}
	if got := listAll(t, b, mediaport.ListQuery{Owner: identity.UserID(contract.NewID(t))}, 2); len(got) != 0 {
		t.Fatalf("an unknown owner's listing = %v", got)
	}
}

func testListPublic(t *testing.T, b Backend) {
	one, two := b.NewUser(t), b.NewUser(t)
	var public []image.ID
	var first *image.Image
	for i := range 4 {
		for _, owner := range []identity.UserID{one, two} {
			addImage(t, b, owner, "private.png", details(t, image.Private, ""), 1)
			img := addImage(t, b, owner, "public.png", details(t, image.Public, ""), 1)
			public = append(public, img.ID())
			if i == 0 && owner == one {
				first = img
			}
		}
	}
	want := contract.NewestFirst(public)
	for _, q := range []mediaport.ListQuery{{}, {Visibility: image.Public}} {
		if got := listAll(t, b, q, 3); !slices.Equal(got, want) {
			t.Fatalf("public listing %+v = %v, want %v", q, got, want)
		}
	}
	if got := listAll(t, b, mediaport.ListQuery{Visibility: image.Private}, 3); len(got) != 0 {
		t.Fatalf("everyone's private images were listed: %v", got)
	}
	page, err := b.Images().List(t.Context(), mediaport.ListQuery{Limit: 100})
	contract.NoErr(t, "List", err)
	assertSameImage(t, page.Images[len(page.Images)-1], first)
}

func testListZeroLimit(t *testing.T, b Backend) {
	owner := b.NewUser(t)
	addImage(t, b, owner, "a.png", details(t, image.Public, ""), 1)
	for _, q := range []mediaport.ListQuery{{Owner: owner}, {}} {
		page, err := b.Images().List(t.Context(), q)
		contract.NoErr(t, "List", err)
		if len(page.Images) != 0 || page.More || page.Images == nil {
			t.Fatalf("List with limit 0 = %d images, more %v", len(page.Images), page.More)
		}
	}
}

func testQuotaSum(t *testing.T, b Backend) {
	ctx := t.Context()
	owner, other := b.NewUser(t), b.NewUser(t)
	if n := used(t, b, owner); n != 0 {
		t.Fatalf("used by a new owner = %d", n)
	}
	big := addImage(t, b, owner, "big.png", details(t, image.Private, ""), 3<<30)
	addImage(t, b, owner, "small.png", details(t, image.Public, ""), 7)
	addImage(t, b, other, "other.png", details(t, image.Public, ""), 1000)
	if n := used(t, b, owner); n != 3<<30+7 {
		t.Fatalf("used = %d, want %d", n, int64(3<<30+7))
	}
	n, err := b.Images().LockOwner(ctx, owner)
	contract.NoErr(t, "LockOwner on the pool", err)
	if n != 3<<30+7 {
		t.Fatalf("used on the pool = %d", n)
	}
	_, err = b.Images().Delete(ctx, owner, []image.ID{big.ID()})
	contract.NoErr(t, "Delete", err)
	if n := used(t, b, owner); n != 7 {
		t.Fatalf("used after delete = %d, want 7", n)
	}
}

func testQuotaUnknownOwner(t *testing.T, b Backend) {
	ctx := t.Context()
	_, err := b.Images().LockOwner(ctx, identity.UserID(contract.NewID(t)))
	contract.WantErr(t, "LockOwner of an unknown user", err, identity.ErrUnknownUser)
	owner := b.NewUser(t)
	addImage(t, b, owner, "a.png", details(t, image.Private, ""), 1)
	b.DeleteUser(t, owner)
	err = b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
		_, err := b.Store.Images(tx).LockOwner(ctx, owner)
		return err
	})
	contract.WantErr(t, "LockOwner of a deleted user", err, identity.ErrUnknownUser)
}

// testQuotaOnThePoolDoesNotWait: while one of the owner's uploads holds the owner's lock in
// its transaction, LockOwner on the pool (an upload beginning) reads the committed sum at once
// instead of queueing behind that commit.
func testQuotaOnThePoolDoesNotWait(t *testing.T, b Backend) {
	ctx := t.Context()
	owner := b.NewUser(t)
	addImage(t, b, owner, "a.png", details(t, image.Private, ""), 5)
	locked, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- b.UoW.Do(ctx, func(ctx context.Context, tx ports.Scope) error {
			if _, err := b.Store.Images(tx).LockOwner(ctx, owner); err != nil {
				close(locked)
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	read, cancel := context.WithTimeout(ctx, 3*time.Second)
	n, err := b.Images().LockOwner(read, owner)
	cancel()
	close(release)
	contract.NoErr(t, "LockOwner on the pool while a transaction holds the owner", err)
	if n != 5 {
		t.Fatalf("used on the pool = %d, want 5", n)
	}
	contract.NoErr(t, "the locking transaction", <-done)
}

// testQuotaConcurrent runs uploads of one owner at once, each checking the quota inside its
// transaction as the upload's commit does: LockOwner, then Add if the sum stays within the
// limit. The transactions hold on between the check and the add, so without the lock several
// would pass the check on the same sum.
func testQuotaConcurrent(t *testing.T, b Backend) {
	const (
		uploads = 8
		size    = 10
		limit   = 50
	)
	errQuota := errors.New("quota exceeded")
	owner := b.NewUser(t)
	start := make(chan struct{})
	errs := make([]error, uploads)
	var wg sync.WaitGroup
	for i := range uploads {
		wg.Go(func() {
			<-start
			img := makeImage(t, owner, fmt.Sprintf("%d.png", i), details(t, image.Private, ""), size)
			errs[i] = b.UoW.Do(t.Context(), func(ctx context.Context, tx ports.Scope) error {
				repo := b.Store.Images(tx)
				used, err := repo.LockOwner(ctx, owner)
				if err != nil {
					return err
				}
				if used+size > limit {
					return errQuota
				}
				time.Sleep(20 * time.Millisecond)
				return repo.Add(ctx, []*image.Image{img})
			})
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, errQuota):
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	if n := used(t, b, owner); n > limit || ok != limit/size || n != int64(ok*size) {
		t.Fatalf("%d uploads stored, %d bytes used; want %d uploads, %d bytes", ok, n, limit/size, limit)
	}
}
