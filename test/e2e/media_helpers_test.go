package e2e

// Helpers of the image tests (media_test.go): images made in the test, with the metadata the
// service must strip; multipart uploads; where the filesystem store keeps objects.

import (
	"bytes"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/postsvc/test/contract/storage"
)

// Marker strings the test images carry in their metadata: none may reach a stored image.
const (
	secretCamera = "SECRET-CAMERA-SERIAL-4711"
	secretXMP    = "SECRET-XMP-GPS-52.5200N"
	secretText   = "SECRET-PNG-TEXT"
)

// mediaBackends runs fn on SQLite and MySQL with the filesystem store, and on SQLite with
// the S3 store (see s3Env).
func mediaBackends(t *testing.T, extra []string, fn func(t *testing.T, s *server)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, startServer(t, b.env(t), withFastHashing(extra...)...))
		})
	}
	t.Run("sqlite+s3", func(t *testing.T) {
		t.Parallel()
		db := backends()[0].env(t)
		fn(t, startServer(t, append(db, s3Env(t)...), withFastHashing(extra...)...))
	})
}

// s3Env points a server at a bucket of the test's own on the tests' S3-protocol server
// (TEST_S3_ENDPOINT, or a versitygw the tests start). Without one the S3 run is skipped,
// except in CI, where it fails.
func s3Env(t *testing.T) []string {
	t.Helper()
	srv := storage.S3(t)
	bucket := srv.NewBucket(t).Bucket()
	return []string{
		"APP_STORAGE_DRIVER=s3",
		"APP_STORAGE_S3_ENDPOINT=" + srv.Endpoint,
		"APP_STORAGE_S3_BUCKET=" + bucket,
		"APP_STORAGE_S3_REGION=" + srv.Region,
		"APP_STORAGE_S3_ACCESS_KEY_ID=" + srv.AccessKey,
		"APP_STORAGE_S3_SECRET_ACCESS_KEY=" + srv.SecretKey,
		"APP_STORAGE_S3_FORCE_PATH_STYLE=true",
	}
}

// picture draws a w × h image with a gradient, so that its pixels are not all alike.
func picture(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / max(w-1, 1)), uint8(y * 255 / max(h-1, 1)), 90, 255})
		}
	}
	return img
}

func pngFile(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, picture(w, h)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// noisyPNG is a PNG of random pixels, which does not compress: about 4 bytes a pixel.
func noisyPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	if _, err := crand.Read(img.Pix); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngWithText is a PNG with a tEXt chunk after IHDR.
func pngWithText(t *testing.T, w, h int) []byte {
	t.Helper()
	raw := pngFile(t, w, h)
	ihdrEnd := 8 + 4 + 4 + 13 + 4
	return append(append(append([]byte{}, raw[:ihdrEnd]...), pngChunk("tEXt", []byte("Comment\x00"+secretText))...), raw[ihdrEnd:]...)
}

func pngChunk(kind string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, kind...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(kind), data...)))
}

func gifFile(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gif.Encode(&buf, picture(w, h), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jpegWithMetadata is a JPEG carrying EXIF (orientation 6, a camera serial in Make) and XMP.
func jpegWithMetadata(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, picture(w, h), &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	// TIFF, big-endian: IFD0 with Orientation = 6 and Make = the serial.
	makeValue := secretCamera + "\x00"
	tiff := []byte("MM\x00\x2a\x00\x00\x00\x08")
	tiff = binary.BigEndian.AppendUint16(tiff, 2)
	tiff = append(tiff, 0x01, 0x0f, 0x00, 0x02) // Make, ASCII
	tiff = binary.BigEndian.AppendUint32(tiff, uint32(len(makeValue)))
	tiff = binary.BigEndian.AppendUint32(tiff, 8+2+12+12+4)             // offset of the string
	tiff = append(tiff, 0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0, 6, 0, 0) // Orientation, SHORT 6
	tiff = append(tiff, 0, 0, 0, 0)                                     // no next IFD
	tiff = append(tiff, makeValue...)
	exif := append([]byte("Exif\x00\x00"), tiff...)
	xmp := []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">" + secretXMP + "</x:xmpmeta>")
	out := append([]byte{}, raw[:2]...)
	out = append(out, jpegSegment(0xe1, exif)...)
	out = append(out, jpegSegment(0xe1, xmp)...)
	return append(out, raw[2:]...)
}

func jpegSegment(marker byte, data []byte) []byte {
	out := []byte{0xff, marker}
	out = binary.BigEndian.AppendUint16(out, uint16(len(data)+2))
	return append(out, data...)
}

// upload is one file part of a multipart upload.
type upload struct {
	name string
	data []byte
}

// multipartBody builds an upload request's body: the fields, in order, then the files.
func multipartBody(t *testing.T, fields [][2]string, files []upload) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		w, err := mw.CreateFormFile("file", f.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// imageDoc is an image as the API answers it.
type imageDoc struct {
	ID           string   `json:"id"`
	Filename     string   `json:"filename"`
	ContentType  string   `json:"content_type"`
	Bytes        int64    `json:"bytes"`
	Width        int      `json:"width"`
	Height       int      `json:"height"`
	SHA256       string   `json:"sha256"`
	Visibility   string   `json:"visibility"`
	Description  string   `json:"description"`
	Tags         []string `json:"tags"`
	CreatedAt    string   `json:"created_at"`
	ContentURL   string   `json:"content_url"`
	ThumbnailURL string   `json:"thumbnail_url"`
}

// uploadImages posts an upload and, when want is 201, returns the images.
func (s *server) uploadImages(token string, fields [][2]string, files []upload, want int) ([]imageDoc, response) {
	s.t.Helper()
	body, ct := multipartBody(s.t, fields, files)
	r := s.doWith("POST", "/api/v1/images", token, body, map[string]string{"Content-Type": ct})
	if r.Status != want {
		s.t.Fatalf("upload: status %d, want %d: %s", r.Status, want, truncate(r.Body))
	}
	if want != http.StatusCreated {
		return nil, r
	}
	var out struct {
		Images []imageDoc `json:"images"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		s.t.Fatalf("upload answer: %v: %s", err, truncate(r.Body))
	}
	return out.Images, r
}

// listImages returns every image of a listing, following cursors.
func (s *server) listImages(token, path string) []imageDoc {
	s.t.Helper()
	var all []imageDoc
	next := path
	for range 100 {
		r := s.do("GET", next, token, nil)
		expect(s.t, r, http.StatusOK)
		var page struct {
			Images     []imageDoc `json:"images"`
			NextCursor *string    `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.Body, &page); err != nil {
			s.t.Fatal(err)
		}
		all = append(all, page.Images...)
		if page.NextCursor == nil {
			return all
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		next = path + sep + "cursor=" + *page.NextCursor
	}
	s.t.Fatal("more than 100 pages")
	return nil
}

func ids(images []imageDoc) []string {
	out := make([]string, len(images))
	for i, img := range images {
		out[i] = img.ID
	}
	return out
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// dataDir is the server's APP_DATA_DIR.
func (s *server) dataDir() string {
	for _, kv := range s.env {
		if v, ok := strings.CutPrefix(kv, "APP_DATA_DIR="); ok {
			return v
		}
	}
	s.t.Fatal("the server has no APP_DATA_DIR")
	return ""
}

// storedObjects lists the files of the filesystem store whose names hold id (an image and
// its thumbnail), or every stored object when id is "".
func (s *server) storedObjects(id string) []string {
	s.t.Helper()
	var found []string
	root := filepath.Join(s.dataDir(), "media")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(path, string(filepath.Separator)+"objects"+string(filepath.Separator)) &&
			(id == "" || strings.Contains(d.Name(), id)) {
			found = append(found, path)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		s.t.Fatal(err)
	}
	return found
}
