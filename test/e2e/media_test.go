package e2e

// End-to-end tests of the image repository (../shared/API.md, "Images") on the real binary:
// SQLite and MySQL with the filesystem store, and the S3 store. Helpers are in
// media_helpers_test.go.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestImagesWalkThrough follows the README's walk-through: upload two images with details,
// read them back cleaned of their metadata, serve content with ETag and Range, publish one
// and read it without a token, search, make it private again, thumbnails, and bulk delete.
func TestImagesWalkThrough(t *testing.T) {
	t.Parallel()
	mediaBackends(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("img-walk"))
		other := s.signup(uniqueEmail("img-other"))
		jpg := jpegWithMetadata(t, 64, 48)
		pngData := pngWithText(t, 40, 30)
		imgs, _ := s.uploadImages(a.Access,
			[][2]string{{"description", "A black-cat at the Café"}, {"tags", " Holiday , ox "}},
			[]upload{{`C:\photos\..\IMG_2024.jpg`, jpg}, {"../../etc/chart.png", pngData}}, http.StatusCreated)
		if len(imgs) != 2 {
			t.Fatalf("%d images, want 2", len(imgs))
		}
		photo, chart := imgs[0], imgs[1]
		if photo.Filename != "IMG_2024.jpg" || chart.Filename != "chart.png" {
			t.Errorf("file names %q and %q, want their last path elements", photo.Filename, chart.Filename)
		}
		if photo.ContentType != "image/jpeg" || chart.ContentType != "image/png" || photo.Width != 64 || photo.Height != 48 ||
			chart.Width != 40 || chart.Height != 30 {
			t.Errorf("types and sizes: %+v %+v", photo, chart)
		}
		if photo.Visibility != "private" || photo.Description != "A black-cat at the Café" || !slices.Equal(photo.Tags, []string{"holiday", "ox"}) {
			t.Errorf("details %q %q %q", photo.Visibility, photo.Description, photo.Tags)
		}

		// The stored bytes: no metadata, hash as announced, served with the stored type.
		content := s.do("GET", photo.ContentURL, a.Access, nil)
		expect(t, content, http.StatusOK)
		for _, secret := range []string{secretCamera, secretXMP, "http://ns.adobe.com/xap"} {
			if bytes.Contains(content.Body, []byte(secret)) {
				t.Errorf("the stored JPEG still holds %q", secret)
			}
		}
		if !bytes.Contains(content.Body, []byte("Exif\x00\x00")) {
			t.Error("the orientation's minimal EXIF block is gone: the photo would display sideways")
		}
		if got := sha256Hex(content.Body); got != photo.SHA256 || int64(len(content.Body)) != photo.Bytes {
			t.Errorf("content hash %s (%d bytes), image says %s (%d bytes)", got, len(content.Body), photo.SHA256, photo.Bytes)
		}
		if len(content.Body) >= len(jpg) {
			t.Errorf("the cleaned JPEG (%d bytes) is not smaller than the upload (%d)", len(content.Body), len(jpg))
		}
		h := content.Header
		if h.Get("Content-Type") != "image/jpeg" || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("Cache-Control") != "private, no-store" || h.Get("ETag") == "" || h.Get("Last-Modified") == "" {
			t.Errorf("content headers: %v", h)
		}
		if cd := h.Get("Content-Disposition"); !strings.HasPrefix(cd, "inline") || !strings.Contains(cd, "IMG_2024.jpg") {
			t.Errorf("Content-Disposition %q", cd)
		}
		chartContent := s.do("GET", chart.ContentURL, a.Access, nil)
		expect(t, chartContent, http.StatusOK)
		if bytes.Contains(chartContent.Body, []byte(secretText)) {
			t.Error("the stored PNG still holds its text chunk")
		}
		if _, _, err := image.Decode(bytes.NewReader(chartContent.Body)); err != nil {
			t.Errorf("the stored PNG does not decode: %v", err)
		}

		// Conditional and partial requests.
		etag := h.Get("ETag")
		notModified := s.doWith("GET", photo.ContentURL, a.Access, nil, map[string]string{"If-None-Match": etag})
		expect(t, notModified, http.StatusNotModified)
		part := s.doWith("GET", photo.ContentURL, a.Access, nil, map[string]string{"Range": "bytes=10-19"})
		expect(t, part, http.StatusPartialContent)
		if !bytes.Equal(part.Body, content.Body[10:20]) || part.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", len(content.Body)) {
			t.Errorf("range answer %q, Content-Range %q", part.Body, part.Header.Get("Content-Range"))
		}
		// A range that selects nothing is 416 as a problem document, with the length; a
		// suffix of zero bytes selects nothing (http.ServeContent answered it an empty 206
		// with "bytes 3177-3176/3177", and the others in plain text). A Range in another
		// unit, or one that is not a valid byte range set, is ignored: the whole content
		// (media_review_test.go tests more).
		for _, rng := range []string{"bytes=5-2", "pages=1-2", "bytes=x-y"} {
			r := s.doWith("GET", photo.ContentURL, a.Access, nil, map[string]string{"Range": rng})
			expect(t, r, http.StatusOK)
			if !bytes.Equal(r.Body, content.Body) {
				t.Errorf("Range %q: %d bytes, want the whole content", rng, len(r.Body))
			}
		}
		for _, rng := range []string{fmt.Sprintf("bytes=%d-", len(content.Body)), "bytes=-0"} {
			r := s.doWith("GET", photo.ContentURL, a.Access, nil, map[string]string{"Range": rng})
			expectProblem(t, r, http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable")
			if got := r.Header.Get("Content-Range"); got != fmt.Sprintf("bytes */%d", len(content.Body)) {
				t.Errorf("Range %q: Content-Range %q", rng, got)
			}
		}
		// A suffix longer than the content is all of it, and a set with one good range is served.
		expect(t, s.doWith("GET", photo.ContentURL, a.Access, nil, map[string]string{"Range": fmt.Sprintf("bytes=-%d", len(content.Body)+5)}), http.StatusPartialContent)
		expect(t, s.doWith("GET", photo.ContentURL, a.Access, nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-,0-0", len(content.Body)+5)}), http.StatusPartialContent)
		head := s.do("HEAD", photo.ContentURL, a.Access, nil)
		expect(t, head, http.StatusOK)
		if len(head.Body) != 0 || head.Header.Get("Content-Length") != strconv.Itoa(len(content.Body)) {
			t.Errorf("HEAD: %d bytes of body, Content-Length %q", len(head.Body), head.Header.Get("Content-Length"))
		}

		// Private: 404 to everyone but the owner, with or without a token.
		for _, token := range []string{"", other.Access} {
			for _, path := range []string{"/api/v1/images/" + photo.ID, photo.ContentURL, photo.ThumbnailURL} {
				expectProblem(t, s.do("GET", path, token, nil), http.StatusNotFound, "image_not_found")
			}
		}

		// Public: readable without a token, listed publicly; private again takes effect at once.
		patched := s.do("PATCH", "/api/v1/images/"+photo.ID, a.Access, map[string]any{"visibility": "public"})
		expect(t, patched, http.StatusOK)
		var pd imageDoc
		if err := json.Unmarshal(patched.Body, &pd); err != nil || pd.Visibility != "public" || pd.Description != photo.Description {
			t.Fatalf("PATCH answered %s", truncate(patched.Body))
		}
		anon := s.do("GET", photo.ContentURL, "", nil)
		expect(t, anon, http.StatusOK)
		if !bytes.Equal(anon.Body, content.Body) || anon.Header.Get("Cache-Control") != "public, no-cache" {
			t.Errorf("anonymous content: %d bytes, Cache-Control %q", len(anon.Body), anon.Header.Get("Cache-Control"))
		}
		expect(t, s.do("GET", photo.ContentURL, other.Access, nil), http.StatusOK)
		if got := ids(s.listImages("", "/api/v1/images/public?q=cat")); !slices.Contains(got, photo.ID) || slices.Contains(got, chart.ID) {
			t.Errorf("public search for cat: %v, want the photo and not the private chart", got)
		}
		expect(t, s.do("PATCH", "/api/v1/images/"+photo.ID, a.Access, map[string]any{"visibility": "private"}), http.StatusOK)
		expectProblem(t, s.do("GET", photo.ContentURL, "", nil), http.StatusNotFound, "image_not_found")
		if got := ids(s.listImages("", "/api/v1/images/public?q=cat")); slices.Contains(got, photo.ID) {
			t.Error("a private image is still listed publicly")
		}

		// Search: every word, any length, case and accents ignored, punctuation and operators
		// are just separators; newest first.
		for q, want := range map[string][]string{
			"ox":              {chart.ID, photo.ID},
			"CAFE black":      {chart.ID, photo.ID},
			"img 2024":        {photo.ID},
			"chart":           {chart.ID},
			"ca":              nil,
			"cat dog":         nil,
			"+black -cat":     {chart.ID, photo.ID},
			`"holiday" (ox)*`: {chart.ID, photo.ID},
			// No word at all: nothing matches (before, everything did, which read as a LIKE
			// wildcard let through).
			"%":  nil,
			"🎉":  nil,
			"*_": nil,
			"  ": {chart.ID, photo.ID}, // blank: no search
		} {
			got := ids(s.listImages(a.Access, "/api/v1/images?q="+urlQuery(q)))
			if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
				t.Errorf("q=%q: %v, want %v", q, got, want)
			}
		}
		if got := ids(s.listImages(other.Access, "/api/v1/images?q=ox")); len(got) != 0 {
			t.Errorf("another user's search found %v", got)
		}
		if got := ids(s.listImages(a.Access, "/api/v1/images?visibility=private&limit=1")); !slices.Equal(got, []string{chart.ID, photo.ID}) {
			t.Errorf("private listing in pages of one: %v", got)
		}
		expectProblem(t, s.do("GET", "/api/v1/images?visibility=secret", a.Access, nil), http.StatusUnprocessableEntity, "validation_failed")

		// Thumbnails: at most 256 px, available at once.
		thumb := s.do("GET", chart.ThumbnailURL, a.Access, nil)
		expect(t, thumb, http.StatusOK)
		cfg, format, err := image.DecodeConfig(bytes.NewReader(thumb.Body))
		if err != nil || format != "png" || cfg.Width > 256 || cfg.Height > 256 {
			t.Errorf("thumbnail: %v %s %dx%d", err, format, cfg.Width, cfg.Height)
		}
		bigs, _ := s.uploadImages(a.Access, nil, []upload{{"big.png", pngFile(t, 600, 300)}}, http.StatusCreated)
		thumb = s.do("GET", bigs[0].ThumbnailURL, a.Access, nil)
		expect(t, thumb, http.StatusOK)
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(thumb.Body)); err != nil || cfg.Width != 256 || cfg.Height != 128 {
			t.Errorf("thumbnail of 600x300: %dx%d, %v; want 256x128", cfg.Width, cfg.Height, err)
		}

		// Bulk delete is all or nothing and names the ids that are not the caller's.
		theirs, _ := s.uploadImages(other.Access, nil, []upload{{"theirs.gif", gifFile(t, 8, 8)}}, http.StatusCreated)
		p := expectProblem(t, s.do("POST", "/api/v1/images/delete", a.Access, map[string]any{"ids": []string{photo.ID, theirs[0].ID, "no-such-id"}}),
			http.StatusNotFound, "image_not_found")
		if got := fmt.Sprint(p["ids"]); got != fmt.Sprint([]any{theirs[0].ID, "no-such-id"}) {
			t.Errorf("404 lists ids %v, want the other user's and the unknown one", p["ids"])
		}
		expect(t, s.do("GET", photo.ContentURL, a.Access, nil), http.StatusOK)
		expect(t, s.do("GET", theirs[0].ContentURL, other.Access, nil), http.StatusOK)
		expect(t, s.do("POST", "/api/v1/images/delete", a.Access, map[string]any{"ids": []string{photo.ID, chart.ID}}), http.StatusNoContent)
		for _, img := range []imageDoc{photo, chart} {
			expectProblem(t, s.do("GET", img.ContentURL, a.Access, nil), http.StatusNotFound, "image_not_found")
		}
		if got := ids(s.listImages(a.Access, "/api/v1/images")); !slices.Equal(got, []string{bigs[0].ID}) {
			t.Errorf("after the bulk delete: %v", got)
		}
		expect(t, s.do("DELETE", "/api/v1/images/"+bigs[0].ID, a.Access, nil), http.StatusNoContent)
		expectProblem(t, s.do("DELETE", "/api/v1/images/"+bigs[0].ID, a.Access, nil), http.StatusNotFound, "image_not_found")
		expectProblem(t, s.do("DELETE", "/api/v1/images/"+theirs[0].ID, a.Access, nil), http.StatusNotFound, "image_not_found")
	})
}

func urlQuery(q string) string { return url.QueryEscape(q) }

// TestImageUploadRefusals: every limit of the contract, and all or nothing.
func TestImageUploadRefusals(t *testing.T) {
	t.Parallel()
	extra := []string{"APP_MEDIA_MAX_FILE_BYTES=100000", "APP_MEDIA_QUOTA_BYTES=300000", "APP_MEDIA_MAX_FILES=5"}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, b.env(t), withFastHashing(extra...)...)
			a := s.signup(uniqueEmail("img-refuse"))
			good := pngFile(t, 20, 20)
			empty := func() {
				t.Helper()
				if got := s.listImages(a.Access, "/api/v1/images"); len(got) != 0 {
					t.Fatalf("a refused upload stored %d images", len(got))
				}
			}

			// Not an image, recognised from the bytes whatever the name says: 415 naming it,
			// and the good file before it is not kept either.
			_, r := s.uploadImages(a.Access, nil, []upload{{"ok.png", good}, {"evil.png", []byte("<html><script>alert(1)</script></html>")}}, http.StatusUnsupportedMediaType)
			if p := r.JSON(t); p["code"] != "unsupported_media_type" || !strings.Contains(fmt.Sprint(p["detail"]), "evil.png") {
				t.Errorf("415 problem %v does not name the file", p)
			}
			empty()
			s.uploadImages(a.Access, nil, []upload{{"cut.png", good[:len(good)/2]}, {"ok.png", good}}, http.StatusUnsupportedMediaType)
			empty()
			// A body cut short: 400 saying so in multipart's terms (it spoke of a JSON object).
			whole, ct := multipartBody(t, nil, []upload{{"ok.png", good}})
			r = s.doWith("POST", "/api/v1/images", a.Access, whole[:len(whole)-30], map[string]string{"Content-Type": ct})
			if p := expectProblem(t, r, http.StatusBadRequest, "malformed_request"); !strings.Contains(fmt.Sprint(p["detail"]), "boundary") || strings.Contains(fmt.Sprint(p["detail"]), "JSON") {
				t.Errorf("a cut multipart body: detail %q", p["detail"])
			}
			empty()
			// Right headers, right CRCs, pixel data that is not a zlib stream: it does not
			// decode, so it is refused instead of stored with a thumbnail that always fails.
			idat := bytes.Index(good, []byte("IDAT")) - 4
			n := int(binary.BigEndian.Uint32(good[idat:]))
			undecodable := append(append(bytes.Clone(good[:idat]), pngChunk("IDAT", bytes.Repeat([]byte{0x5a}, n))...), good[idat+12+n:]...)
			_, r = s.uploadImages(a.Access, nil, []upload{{"ok.png", good}, {"pixels.png", undecodable}}, http.StatusUnsupportedMediaType)
			if p := r.JSON(t); !strings.Contains(fmt.Sprint(p["detail"]), "pixels.png") {
				t.Errorf("415 problem %v does not name the file", p)
			}
			empty()

			// Over the file limit: 413; too many files: 413.
			big := noisyPNG(t, 200, 200) // 160,000 bytes of noise, which PNG cannot compress
			if len(big) <= 100000 {
				t.Fatalf("the noisy PNG is only %d bytes", len(big))
			}
			s.uploadImages(a.Access, nil, []upload{{"ok.png", good}, {"big.png", big}}, http.StatusRequestEntityTooLarge)
			empty()
			// Bytes after the image's end count against the limit too.
			padded := append(append([]byte{}, good...), make([]byte, 100001)...)
			s.uploadImages(a.Access, nil, []upload{{"padded.png", padded}}, http.StatusRequestEntityTooLarge)
			empty()
			six := make([]upload, 6)
			for i := range six {
				six[i] = upload{fmt.Sprintf("f%d.png", i), good}
			}
			s.uploadImages(a.Access, nil, six, http.StatusRequestEntityTooLarge)
			empty()

			// A decompression bomb: a PNG header claiming 100000 × 100000 pixels.
			bomb := append([]byte{}, good...)
			copy(bomb[16:24], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
			binary.BigEndian.PutUint32(bomb[29:33], crc32.ChecksumIEEE(bomb[12:29]))
			_, r = s.uploadImages(a.Access, nil, []upload{{"bomb.png", bomb}}, http.StatusUnprocessableEntity)
			if !strings.Contains(string(r.Body), "bomb.png") {
				t.Errorf("the 422 does not name the file: %s", r.Body)
			}
			empty()

			// Invalid details; fields after a file; no file at all; not multipart.
			for _, fields := range [][][2]string{
				{{"visibility", "secret"}},
				{{"tags", "ok, not ok"}},
				{{"description", strings.Repeat("x", 1001)}},
				{{"colour", "red"}},
				{{"tags", "a"}, {"tags", "b"}},
			} {
				s.uploadImages(a.Access, fields, []upload{{"ok.png", good}}, http.StatusUnprocessableEntity)
			}
			// A tag may not hold an invisible character: a Hangul filler is a letter drawn as
			// nothing, so "ok, \u3164" would add an invisible tag. The answer names the tag.
			_, r = s.uploadImages(a.Access, [][2]string{{"tags", "ok, \u3164"}}, []upload{{"ok.png", good}}, http.StatusUnprocessableEntity)
			expectFieldMessage(t, r, "tags[1]", "must not contain invisible or control characters (U+3164)")
			s.uploadImages(a.Access, nil, nil, http.StatusUnprocessableEntity)
			// Text that is not Unicode is malformed, as in JSON bodies: 400 naming the field.
			for _, name := range []string{"description", "tags", "visibility"} {
				_, r := s.uploadImages(a.Access, [][2]string{{name, "caf\xe9"}}, []upload{{"ok.png", good}}, http.StatusBadRequest)
				if p := r.JSON(t); p["code"] != "malformed_request" || !strings.Contains(fmt.Sprint(p["detail"]), name) {
					t.Errorf("invalid UTF-8 in %s: %v, want malformed_request naming the field", name, p)
				}
			}
			expectProblem(t, s.doWith("POST", "/api/v1/images", a.Access, good, map[string]string{"Content-Type": "image/png"}),
				http.StatusUnsupportedMediaType, "unsupported_media_type")
			empty()

			// A part header line that is malformed (no colon) is malformed MIME: 400 saying where.
			noColon := []byte("--b\r\nContent-Disposition form-data; name=\"file\"; filename=\"x.png\"\r\n" +
				"Content-Type: image/png\r\n\r\n" + string(good) + "\r\n--b--\r\n")
			r = s.doWith("POST", "/api/v1/images", a.Access, noColon, map[string]string{"Content-Type": "multipart/form-data; boundary=b"})
			if p := expectProblem(t, r, http.StatusBadRequest, "malformed_request"); !strings.Contains(fmt.Sprint(p["detail"]), "header") {
				t.Errorf("a part header line without a colon: %v, want malformed_request about the header", p)
			}
			empty()
			// A control character in a file name, sent raw (as Go's multipart.Writer sends it;
			// media_review_test.go tests it further) or percent-encoded (RFC 7578's filename*),
			// reaches the service, which removes it from the stored name, as the contract says.
			raw, _ := s.uploadImages(a.Access, nil, []upload{{"evil\x01name.png", good}}, http.StatusCreated)
			if raw[0].Filename != "evilname.png" {
				t.Errorf("a raw file name with a control character is stored as %q, want it removed (evilname.png)", raw[0].Filename)
			}
			expect(t, s.do("DELETE", "/api/v1/images/"+raw[0].ID, a.Access, nil), http.StatusNoContent)
			encoded := []byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''evil%01%0Aname%09.png\r\n" +
				"Content-Type: image/png\r\n\r\n" + string(good) + "\r\n--b--\r\n")
			r = s.doWith("POST", "/api/v1/images", a.Access, encoded, map[string]string{"Content-Type": "multipart/form-data; boundary=b"})
			expect(t, r, http.StatusCreated)
			if got := r.JSON(t)["images"].([]any)[0].(map[string]any)["filename"]; got != "evilname.png" {
				t.Errorf("an encoded file name with control characters is stored as %q, want them removed (evilname.png)", got)
			}
			// So are the invisible characters a name may not hold (a right-to-left override would
			// show "photo<RLO>gnp.exe" as "photoexe.png"), but not the joiners of Persian words.
			persian := "\u067e\u06cc\u0634\u200c\u0646\u0645\u0627\u06cc\u0634"
			named, _ := s.uploadImages(a.Access, nil, []upload{{"photo\u202egnp.exe\u200b\u3164" + persian + ".png", good}}, http.StatusCreated)
			if want := "photognp.exe" + persian + ".png"; named[0].Filename != want {
				t.Errorf("a file name with invisible characters is stored as %+q, want %+q", named[0].Filename, want)
			}
			expect(t, s.do("DELETE", "/api/v1/images/"+named[0].ID, a.Access, nil), http.StatusNoContent)

			// The quota (300,000 bytes): uploads that would pass it are refused whole.
			var stored int64
			for stored < 200000 {
				imgs, _ := s.uploadImages(a.Access, nil, []upload{{"fill.png", noisyPNG(t, 100, 100)}}, http.StatusCreated)
				stored += imgs[0].Bytes
			}
			before := len(s.listImages(a.Access, "/api/v1/images"))
			_, r = s.uploadImages(a.Access, nil, []upload{{"a.png", noisyPNG(t, 100, 100)}, {"b.png", noisyPNG(t, 100, 100)}, {"c.png", noisyPNG(t, 100, 100)}}, http.StatusForbidden)
			if r.JSON(t)["code"] != "quota_exceeded" {
				t.Errorf("quota answer %s", r.Body)
			}
			if after := len(s.listImages(a.Access, "/api/v1/images")); after != before {
				t.Errorf("a refused upload changed the count from %d to %d", before, after)
			}
		})
	}
}

// TestImageQuotaUnderConcurrency: many uploads of one user at once never store past the quota.
func TestImageQuotaUnderConcurrency(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			file := noisyPNG(t, 60, 60)
			s := startServer(t, b.env(t), withFastHashing("APP_MEDIA_QUOTA_BYTES="+strconv.Itoa(len(file)*5+10))...)
			a := s.signup(uniqueEmail("img-quota"))
			var wg sync.WaitGroup
			statuses := make([]int, 16)
			for i := range statuses {
				wg.Go(func() {
					body, ct := multipartBody(t, nil, []upload{{"q.png", file}})
					statuses[i] = s.doWith("POST", "/api/v1/images", a.Access, body, map[string]string{"Content-Type": ct}).Status
				})
			}
			wg.Wait()
			created := 0
			for _, st := range statuses {
				switch st {
				case http.StatusCreated:
					created++
				case http.StatusForbidden:
				default:
					t.Errorf("status %d among concurrent uploads", st)
				}
			}
			var total int64
			for _, img := range s.listImages(a.Access, "/api/v1/images") {
				total += img.Bytes
			}
			if created == 0 || total > int64(len(file)*5+10) {
				t.Fatalf("%d created holding %d bytes; the quota is %d", created, total, len(file)*5+10)
			}
		})
	}
}

// TestImagesRefuseAdmins: admins hold no content: 403 everywhere with their token, even on a
// public image, which they can still read without one.
func TestImagesRefuseAdmins(t *testing.T) {
	t.Parallel()
	ecgBackendsWithAdmin(t, nil, func(t *testing.T, s *server, admin account) {
		u := s.signup(uniqueEmail("img-admin"))
		imgs, _ := s.uploadImages(u.Access, [][2]string{{"visibility", "public"}}, []upload{{"p.png", pngFile(t, 10, 10)}}, http.StatusCreated)
		id := imgs[0].ID
		for _, req := range []struct{ method, path string }{
			{"GET", "/api/v1/images"}, {"GET", "/api/v1/images/public"}, {"GET", "/api/v1/images/" + id},
			{"GET", "/api/v1/images/" + id + "/content"}, {"GET", "/api/v1/images/" + id + "/thumbnail"},
			{"DELETE", "/api/v1/images/" + id},
		} {
			expectProblem(t, s.do(req.method, req.path, admin.Access, nil), http.StatusForbidden, "forbidden")
		}
		expectProblem(t, s.do("PATCH", "/api/v1/images/"+id, admin.Access, map[string]any{"visibility": "private"}), http.StatusForbidden, "forbidden")
		expectProblem(t, s.do("POST", "/api/v1/images/delete", admin.Access, map[string]any{"ids": []string{id}}), http.StatusForbidden, "forbidden")
		s.uploadImages(admin.Access, nil, []upload{{"p.png", pngFile(t, 10, 10)}}, http.StatusForbidden)
		expect(t, s.do("GET", "/api/v1/images/"+id+"/content", "", nil), http.StatusOK)
		// The role is refused before the body is looked at: a body of the wrong kind, or
		// a malformed one, is 403 too, never 415 or 400 (which said more than "refused").
		// Posts and ECGs answer the same.
		for _, req := range []struct{ method, path, contentType, body string }{
			{"POST", "/api/v1/images", "text/plain", "hello"},
			{"POST", "/api/v1/images/delete", "application/json", "{bad"},
			{"PATCH", "/api/v1/images/" + id, "text/plain", "hello"},
			{"POST", "/api/v1/posts", "text/plain", "hello"},
			{"POST", "/api/v1/posts", "application/json", "{bad"},
			{"POST", "/api/v1/ecgs", "text/plain", "hello"},
			{"GET", "/api/v1/images?limit=0", "", ""},
			{"GET", "/api/v1/posts?cursor=forged", "", ""},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			r, err := s.try(ctx, nil, req.method, req.path, admin.Access, strings.NewReader(req.body), map[string]string{"Content-Type": req.contentType})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != http.StatusForbidden {
				t.Errorf("admin %s %s (%s %q): %d %s, want 403", req.method, req.path, req.contentType, req.body, r.Status, truncate(r.Body))
			}
		}

		// Deleting the owner deletes the images and, after the commit, their objects.
		expect(t, s.do("DELETE", "/api/v1/admin/users/"+u.ID, admin.Access, nil), http.StatusNoContent)
		expectProblem(t, s.do("GET", "/api/v1/images/"+id+"/content", "", nil), http.StatusNotFound, "image_not_found")
		waitFor(t, 10*time.Second, "the deleted user's objects to be removed", func() bool { return len(s.storedObjects(id)) == 0 })
	})
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestImageTagsInEveryScript: a tag is letters as their script writes them, vowel signs and
// joiners included, and searching for it finds its image.
func TestImageTagsInEveryScript(t *testing.T) {
	t.Parallel()
	mediaBackends(t, nil, func(t *testing.T, s *server) {
		a := s.signup(uniqueEmail("img-tags"))
		hindi, persian := "हिंदी", "می\u200cخواهم"
		imgs, _ := s.uploadImages(a.Access, [][2]string{{"tags", hindi + ", " + persian}},
			[]upload{{"a.png", pngFile(t, 8, 8)}}, http.StatusCreated)
		if len(imgs) != 1 || !slices.Equal(imgs[0].Tags, []string{hindi, persian}) {
			t.Fatalf("images %+v, want one tagged %q and %q", imgs, hindi, persian)
		}
		for _, q := range []string{hindi, persian} {
			if got := ids(s.listImages(a.Access, "/api/v1/images?q="+urlQuery(q))); !slices.Equal(got, []string{imgs[0].ID}) {
				t.Errorf("search %q found %v, want the image", q, got)
			}
		}
	})
}
