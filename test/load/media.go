package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/acme/postsvc/adapters/storage/fsstore"
	mediaapp "github.com/acme/postsvc/application/media"
	"github.com/acme/postsvc/config"
)

// The media scenarios (the media context, ../shared/API.md "Images"):
//
//   - upload of one JPEG of about 1 MiB per request (noise, so it does not compress, with an
//     EXIF APP1 segment for the server to strip) from -clients clients, in turns with the
//     upload ceiling: a bare net/http handler, in a process of its own, that reads the same
//     multipart body's file part and writes its bytes with the server's own filesystem store
//     (fsstore.Put: temporary file, fsync, rename, fsync of the folder) into the server's
//     own media folder (target: 0.6 of it);
//   - GET of a public image's content without a token, in turns with http.ServeFile of the
//     very file the server stored, in a process of its own (target: 0.7 of it);
//   - -media-bulk-uploads clients each uploading one request of 50 such files at once, once
//     each (target: the server's peak RSS under 512 MiB, every upload answered 201).
//
// Every upload queues a thumbnail job. After each of the server's upload turns the runner
// waits, outside the turn's timing, until no thumbnail job is left, so that the ceilings'
// turns run on a quiet server (as the ECG scenarios do with their analyses).

// Environment of the media ceiling processes (see serveMediaCeiling): the address, and either
// the upload ceiling's captured answer and store folder, or the serve ceiling's file.
const (
	envMediaCeilingAddr     = "POSTSVC_LOAD_MEDIA_CEILING_ADDR"
	envMediaCeilingResponse = "POSTSVC_LOAD_MEDIA_CEILING_RESPONSE"
	envMediaCeilingStore    = "POSTSVC_LOAD_MEDIA_CEILING_STORE"
	envMediaCeilingLimit    = "POSTSVC_LOAD_MEDIA_CEILING_LIMIT"
	envMediaCeilingFile     = "POSTSVC_LOAD_MEDIA_CEILING_FILE"
)

// Shapes and bounds of the media scenarios.
const (
	// mediaJPEGBytes is the size the generated JPEG aims at (EXIF included), from below.
	mediaJPEGBytes = 1 << 20
	// mediaJPEGSide is the generated JPEG's width and height: noise this size takes about 1 MiB
	// at a quality in the nineties.
	mediaJPEGSide = 1024
	// mediaBulkFiles is how many files each bulk upload holds (the contract's most).
	mediaBulkFiles = 50
	// mediaCeilingPrefix is where the upload ceiling stores its objects in the server's folder:
	// outside image.ObjectPrefix, so the server's sweep never looks at them.
	mediaCeilingPrefix = "load-ceiling"
	// mediaDrainWait bounds the wait for the thumbnail backlog after an upload turn.
	mediaDrainWait = 10 * time.Minute
	// mediaBulkTimeout bounds one bulk upload at the client.
	mediaBulkTimeout = 30 * time.Minute
	// mediaBulkProfile is how long the server is profiled (-pprof-dir) from the start of the
	// bulk uploads.
	mediaBulkProfile = 30 * time.Second
	// mediaCameraSerial is written in the generated EXIF, and must never come back.
	mediaCameraSerial = "LOADCAM-SN-004217"
)

// jpegDoc is the generated JPEG.
type jpegDoc struct {
	body          []byte
	width, height int
	quality       int
	exifBytes     int // the APP1 segment, marker included
}

// makeJPEG encodes mediaJPEGSide² pixels of noise at the highest quality that keeps the file,
// EXIF segment included, at most mediaJPEGBytes, and inserts the EXIF segment after SOI. The
// same run of the runner always makes the same bytes.
func makeJPEG() (jpegDoc, error) {
	img := image.NewRGBA(image.Rect(0, 0, mediaJPEGSide, mediaJPEGSide))
	_, _ = rand.NewChaCha8([32]byte{'l', 'o', 'a', 'd'}).Read(img.Pix)
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 0xff // opaque
	}
	exif := exifSegment()
	encode := func(q int) ([]byte, error) {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	// Size grows with quality: the highest quality that fits, by bisection.
	lo, hi := 1, 100
	var best []byte
	bestQ := 0
	for lo <= hi {
		q := (lo + hi) / 2
		raw, err := encode(q)
		if err != nil {
			return jpegDoc{}, err
		}
		if len(raw)+len(exif) <= mediaJPEGBytes {
			best, bestQ = raw, q
			lo = q + 1
		} else {
			hi = q - 1
		}
	}
	if best == nil {
		return jpegDoc{}, errors.New("no JPEG quality keeps the noise image under 1 MiB")
	}
	body := make([]byte, 0, len(best)+len(exif))
	body = append(append(append(body, best[:2]...), exif...), best[2:]...)
	return jpegDoc{body: body, width: mediaJPEGSide, height: mediaJPEGSide, quality: bestQ, exifBytes: len(exif)}, nil
}

// tiffEntry is one entry of an EXIF IFD; data longer than 4 bytes goes after the IFD.
type tiffEntry struct {
	tag, kind uint16
	count     uint32
	data      []byte
}

// TIFF field types.
const (
	tiffASCII    = 2
	tiffShort    = 3
	tiffLong     = 4
	tiffRational = 5
)

func asciiEntry(tag uint16, s string) tiffEntry {
	return tiffEntry{tag: tag, kind: tiffASCII, count: uint32(len(s) + 1), data: append([]byte(s), 0)} //nolint:gosec // G115: short constant strings
}

// tiffIFD lays out an IFD that starts at offset start of the TIFF data: the entries, no next
// IFD, then the values that do not fit in an entry.
func tiffIFD(start uint32, entries []tiffEntry) []byte {
	le := binary.LittleEndian
	dataAt := start + 2 + 12*uint32(len(entries)) + 4 //nolint:gosec // G115: a handful of entries
	var head, data []byte
	head = le.AppendUint16(head, uint16(len(entries))) //nolint:gosec // G115: a handful of entries
	for _, e := range entries {
		head = le.AppendUint16(head, e.tag)
		head = le.AppendUint16(head, e.kind)
		head = le.AppendUint32(head, e.count)
		if len(e.data) <= 4 {
			head = append(head, e.data...)
			head = append(head, make([]byte, 4-len(e.data))...)
			continue
		}
		head = le.AppendUint32(head, dataAt+uint32(len(data))) //nolint:gosec // G115: under 64 KiB
		data = append(data, e.data...)
		if len(data)%2 == 1 {
			data = append(data, 0) // values start on a word boundary
		}
	}
	head = le.AppendUint32(head, 0)
	return append(head, data...)
}

// exifSegment is an APP1 EXIF segment as a camera writes one, in short: IFD0 with the make,
// model (a serial number), software, date and orientation 1, and a GPS IFD with a position.
// Orientation 1 means the cleaned file keeps no EXIF at all.
func exifSegment() []byte {
	le := binary.LittleEndian
	rational := func(pairs ...uint32) []byte {
		var b []byte
		for _, v := range pairs {
			b = le.AppendUint32(b, v)
		}
		return b
	}
	ifd0 := func(gpsAt uint32) []tiffEntry {
		return []tiffEntry{
			asciiEntry(0x010f, "LoadCam"),
			asciiEntry(0x0110, "LoadCam Mark II "+mediaCameraSerial),
			{tag: 0x0112, kind: tiffShort, count: 1, data: le.AppendUint16(nil, 1)},
			asciiEntry(0x0131, "postsvc load runner"),
			asciiEntry(0x0132, "2024:05:01 09:30:00"),
			{tag: 0x8825, kind: tiffLong, count: 1, data: le.AppendUint32(nil, gpsAt)},
		}
	}
	gps := []tiffEntry{
		asciiEntry(0x0001, "N"),
		{tag: 0x0002, kind: tiffRational, count: 3, data: rational(48, 1, 51, 1, 2964, 100)},
		asciiEntry(0x0003, "E"),
		{tag: 0x0004, kind: tiffRational, count: 3, data: rational(2, 1, 17, 1, 4032, 100)},
	}
	// IFD0 has the same length whatever the GPS offset: lay it out once to learn it.
	gpsAt := 8 + uint32(len(tiffIFD(8, ifd0(0)))) //nolint:gosec // G115: a few hundred bytes
	tiff := append([]byte("II*\x00"), le.AppendUint32(nil, 8)...)
	tiff = append(tiff, tiffIFD(8, ifd0(gpsAt))...)
	tiff = append(tiff, tiffIFD(gpsAt, gps)...)
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xff, 0xe1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2)) //nolint:gosec // G115: a few hundred bytes
	return append(seg, payload...)
}

// multipartImages is an upload body of n copies of file, as "file" parts of type image/jpeg.
func multipartImages(file []byte, n int) (body []byte, contentType string, err error) {
	var b bytes.Buffer
	b.Grow(n * (len(file) + 256))
	mw := multipart.NewWriter(&b)
	for i := range n {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="photo-%02d.jpg"`, i))
		h.Set("Content-Type", "image/jpeg")
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, "", err
		}
		if _, err := w.Write(file); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return b.Bytes(), mw.FormDataContentType(), nil
}

// imageDoc is an image as the API answers it (the fields the runner checks).
type imageDoc struct {
	ID          string `json:"id"`
	ContentType string `json:"content_type"`
	Bytes       int64  `json:"bytes"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	SHA256      string `json:"sha256"`
	Visibility  string `json:"visibility"`
}

// mediaFigures is what the media scenarios measured, for the report.
type mediaFigures struct {
	jpeg      jpegDoc
	stored    int64 // bytes of the cleaned image
	storeDir  string
	maxFiles  int
	bulkBytes int

	// upload and ceiling are the paired upload measurement; backlog is the thumbnail jobs
	// left at the end of each of the server's upload turns, drain how long they then took.
	upload, ceiling result
	backlog         []int64
	drain           []time.Duration

	// get and serve are the paired public GET measurement.
	get, serve result

	// bulk is the bulk-upload scenario, bulkOK its 201 answers; its thumbnails took
	// bulkDrain afterwards (bulkLeft of them pending then), with bulkDrainRSS the server's
	// peak RSS meanwhile.
	bulk         result
	bulkOK       int64
	bulkLeft     int64
	bulkDrain    time.Duration
	bulkDrainRSS int64
	// failedThumbnails counts thumbnail jobs that failed for good by the end.
	failedThumbnails int64
}

// serviceSetting is the server's setting key: the -server-env value, else its default.
func serviceSetting(opts options, key string) string {
	v := fmt.Sprint(config.Defaults()[key])
	for _, kv := range opts.serverEnv {
		if k, val, _ := strings.Cut(kv, "="); k == config.EnvName(key) {
			v = val
		}
	}
	return v
}

// serverMediaDir is the filesystem store's folder of the server: <data dir>/media.
func (r *runner) serverMediaDir() string {
	data := filepath.Join(r.tmp, "data")
	for _, kv := range r.opts.serverEnv {
		if k, v, _ := strings.Cut(kv, "="); k == "APP_DATA_DIR" {
			data = v
		}
	}
	return filepath.Join(data, "media")
}

// mediaScenarios runs the media scenarios and adds their ratios to the report's targets.
func (r *runner) mediaScenarios(ctx context.Context) error {
	fig := &mediaFigures{storeDir: r.serverMediaDir()}
	r.rep.media = fig
	if d := serviceSetting(r.opts, "storage.driver"); d != config.StorageFilesystem {
		return fmt.Errorf("the media scenarios compare with the filesystem store, and the server's storage driver is %q", d)
	}
	maxFiles, err := strconv.Atoi(serviceSetting(r.opts, "media.max_files"))
	if err != nil || maxFiles < 1 {
		return fmt.Errorf("media.max_files %q: not a positive integer", serviceSetting(r.opts, "media.max_files"))
	}
	fig.maxFiles = maxFiles
	t0 := time.Now()
	if fig.jpeg, err = makeJPEG(); err != nil {
		return err
	}
	logf("JPEG: %d×%d noise at quality %d with a %d-byte EXIF segment, %d bytes, made in %s",
		fig.jpeg.width, fig.jpeg.height, fig.jpeg.quality, fig.jpeg.exifBytes, len(fig.jpeg.body), time.Since(t0).Round(time.Millisecond))
	one, oneType, err := multipartImages(fig.jpeg.body, 1)
	if err != nil {
		return err
	}
	// One upload first, whose answer the upload ceiling replays and whose image is then made
	// public for the GET scenario.
	owner := r.users[0]
	w := &worker{}
	resp, err := callType(ctx, r.client, w, http.MethodPost, r.server.base+"/api/v1/images", owner.token, oneType, one)
	if err != nil {
		return err
	}
	imgs, err := uploadedImages(resp, w, 1)
	if err != nil {
		return err
	}
	captured := capture(resp, w.buf.Bytes())
	first := imgs[0]
	fig.stored = first.Bytes
	if first.ContentType != "image/jpeg" || first.Width != fig.jpeg.width || first.Height != fig.jpeg.height || first.Bytes >= int64(len(fig.jpeg.body)) {
		return fmt.Errorf("upload answered %+v for a %d×%d JPEG of %d bytes with EXIF", first, fig.jpeg.width, fig.jpeg.height, len(fig.jpeg.body))
	}
	if err := r.mediaUpload(ctx, fig, captured, one, oneType); err != nil {
		return err
	}
	if err := r.mediaGet(ctx, fig, owner, first); err != nil {
		return err
	}
	if r.opts.mediaBulkUploads > 0 {
		if err := r.mediaBulk(ctx, fig); err != nil {
			return err
		}
	}
	if err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM jobs WHERE kind = ? AND status = 'failed'", mediaapp.ThumbnailJob).Scan(&fig.failedThumbnails); err != nil {
		return err
	}
	r.rep.ratios = append(r.rep.ratios,
		ratio{label: "image upload 1 MiB / upload ceiling (net/http + same storage write)", short: "IMG UPLOAD", scenario: fig.upload, ceiling: fig.ceiling, target: 0.6},
		ratio{label: "public image GET 1 MiB / http.ServeFile", short: "IMG GET", scenario: fig.get, ceiling: fig.serve, target: 0.7},
	)
	return ctx.Err()
}

// uploadedImages checks an upload's answer: 201 with want JPEG images.
func uploadedImages(resp reply, w *worker, want int) ([]imageDoc, error) {
	if err := expect(resp, w, http.StatusCreated); err != nil {
		return nil, err
	}
	var out struct {
		Images []imageDoc `json:"images"`
	}
	if err := json.Unmarshal(w.buf.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("upload answered %.200s: %w", w.buf.String(), err)
	}
	if len(out.Images) != want {
		return nil, fmt.Errorf("upload answered %d images, want %d", len(out.Images), want)
	}
	for _, img := range out.Images {
		if img.ID == "" || img.ContentType != "image/jpeg" {
			return nil, fmt.Errorf("upload answered the image %+v", img)
		}
	}
	return out.Images, nil
}

// mediaUpload measures the upload of one JPEG per request in turns with the upload ceiling.
// After each of the server's turns it waits, outside the turn's timing, for the thumbnails the
// turn queued.
func (r *runner) mediaUpload(ctx context.Context, fig *mediaFigures, captured capturedResponse, body []byte, contentType string) error {
	limit := serviceSetting(r.opts, "media.max_request_bytes")
	ceiling, err := startCeiling(ctx, "media upload ceiling (net/http + fsstore.Put)", r.tmp, "media-ceiling-response.json", captured,
		envMediaCeilingAddr, envMediaCeilingResponse, []string{envMediaCeilingStore + "=" + fig.storeDir, envMediaCeilingLimit + "=" + limit})
	if err != nil {
		return err
	}
	defer ceiling.stop()
	op := func(base string) op {
		return func(ctx context.Context, w *worker, _ int64) (bool, error) {
			resp, err := callType(ctx, r.client, w, http.MethodPost, base+"/api/v1/images", r.user(w).token, contentType, body)
			if err != nil {
				return false, err
			}
			_, err = uploadedImages(resp, w, 1)
			return false, err
		}
	}
	name := fmt.Sprintf("image upload %.2f MiB JPEG", float64(len(fig.jpeg.body))/(1<<20))
	got := r.pair(ctx, r.opts.clients,
		func(b bounds) result {
			res := r.driveServer(ctx, name, b, op(r.server.base))
			left, took, err := r.waitThumbnails(ctx)
			if err != nil {
				logf("thumbnail backlog: %v", err)
			}
			logf("image upload turn: %d uploads, %d thumbnails pending at its end, made %s later", res.Requests, left, took.Round(time.Millisecond))
			fig.backlog = append(fig.backlog, left)
			fig.drain = append(fig.drain, took)
			return res
		},
		func(b bounds) result {
			return drive(ctx, "image upload ceiling (net/http + fsstore.Put)", b, ceiling.pid(), op(ceiling.base))
		})
	ceiling.stop()
	fig.upload, fig.ceiling = r.record(got[0], false), r.record(got[1], true)
	return ctx.Err()
}

// waitThumbnails waits until no thumbnail job is queued or running, or mediaDrainWait has
// passed. It returns how many there were when it started and how long they took.
func (r *runner) waitThumbnails(ctx context.Context) (int64, time.Duration, error) {
	start := time.Now()
	var first int64 = -1
	for {
		var n int64
		if err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running') AND kind = ?", mediaapp.ThumbnailJob).Scan(&n); err != nil {
			return max(first, 0), time.Since(start), err
		}
		if first < 0 {
			first = n
		}
		if n == 0 {
			return first, time.Since(start), nil
		}
		if time.Since(start) > mediaDrainWait {
			return first, time.Since(start), fmt.Errorf("%d thumbnail jobs still pending after %s", n, mediaDrainWait)
		}
		select {
		case <-ctx.Done():
			return first, time.Since(start), ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// mediaGet makes img public, checks one anonymous GET of its content against the stored file
// (whole, the answer's hash, no EXIF), then measures anonymous GETs in turns with
// http.ServeFile of that file.
func (r *runner) mediaGet(ctx context.Context, fig *mediaFigures, owner *loadUser, img imageDoc) error {
	w := &worker{}
	patch := []byte(`{"visibility":"public"}`)
	resp, err := call(ctx, r.client, w, http.MethodPatch, r.server.base+"/api/v1/images/"+url.PathEscape(img.ID), owner.token, patch)
	if err != nil {
		return err
	}
	if err := expect(resp, w, http.StatusOK); err != nil {
		return err
	}
	file := filepath.Join(fig.storeDir, "objects", "media", owner.id, img.ID)
	stored, err := os.ReadFile(file) //nolint:gosec // G304: the server's object, in the run's folder
	if err != nil {
		return fmt.Errorf("the stored image: %w", err)
	}
	path := "/api/v1/images/" + url.PathEscape(img.ID) + "/content"
	resp, err = call(ctx, r.client, w, http.MethodGet, r.server.base+path, "", nil)
	if err != nil {
		return err
	}
	if err := expect(resp, w, http.StatusOK); err != nil {
		return err
	}
	sum := sha256.Sum256(w.buf.Bytes())
	switch {
	case !bytes.Equal(w.buf.Bytes(), stored):
		return fmt.Errorf("GET %s: %d bytes that are not the %d stored in %s", path, w.buf.Len(), len(stored), file)
	case hex.EncodeToString(sum[:]) != img.SHA256:
		return fmt.Errorf("GET %s: sha256 %x, the upload said %s", path, sum, img.SHA256)
	case bytes.Contains(stored, []byte("Exif\x00\x00")) || bytes.Contains(stored, []byte(mediaCameraSerial)):
		return fmt.Errorf("GET %s: the served image still carries EXIF", path)
	case resp.header.Get("Cache-Control") != "public, no-cache":
		return fmt.Errorf("GET %s: Cache-Control %q, want a public image's", path, resp.header.Get("Cache-Control"))
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	addr, err := freeLoopbackAddr(ctx)
	if err != nil {
		return err
	}
	serve, err := startProcess(ctx, "media serve ceiling (http.ServeFile)", self, nil,
		[]string{envMediaCeilingAddr + "=" + addr, envMediaCeilingFile + "=" + file}, "http://"+addr, "/livez", nil)
	if err != nil {
		return err
	}
	defer serve.stop()
	size := len(stored)
	op := func(base string) op {
		return func(ctx context.Context, w *worker, _ int64) (bool, error) {
			resp, err := call(ctx, r.client, w, http.MethodGet, base+path, "", nil)
			if err != nil {
				return false, err
			}
			if err := expect(resp, w, http.StatusOK); err != nil {
				return false, err
			}
			if w.buf.Len() != size {
				return false, fmt.Errorf("GET %s: %d bytes, want %d", path, w.buf.Len(), size)
			}
			return false, nil
		}
	}
	got := r.pair(ctx, r.opts.clients,
		func(b bounds) result {
			return r.driveServer(ctx, fmt.Sprintf("public image GET %.2f MiB, no token", float64(len(fig.jpeg.body))/(1<<20)), b, op(r.server.base))
		},
		func(b bounds) result {
			return drive(ctx, "image serve ceiling (http.ServeFile)", b, serve.pid(), op(serve.base))
		})
	serve.stop()
	fig.get, fig.serve = r.record(got[0], false), r.record(got[1], true)
	return ctx.Err()
}

// mediaBulk has -media-bulk-uploads clients upload mediaBulkFiles JPEGs each in one request,
// all at once, once each, and measures the server's peak RSS; then it waits for their
// thumbnails, measuring the peak RSS meanwhile too.
func (r *runner) mediaBulk(ctx context.Context, fig *mediaFigures) error {
	if fig.maxFiles < mediaBulkFiles {
		return fmt.Errorf("the server takes at most %d files a request (media.max_files), the bulk scenario sends %d", fig.maxFiles, mediaBulkFiles)
	}
	body, contentType, err := multipartImages(fig.jpeg.body, mediaBulkFiles)
	if err != nil {
		return err
	}
	fig.bulkBytes = len(body)
	n := r.opts.mediaBulkUploads
	client := newLoadClient(n)
	client.timeout = mediaBulkTimeout
	defer client.CloseIdleConnections()
	var ok atomic.Int64
	name := fmt.Sprintf("image upload %d × %.2f MiB in one request, %d at once", mediaBulkFiles, float64(len(fig.jpeg.body))/(1<<20), n)
	stopPerf := r.startPerf(ctx, name)
	waitProfile := r.startCPUProfile(ctx, name, mediaBulkProfile)
	res := drive(ctx, name, bounds{clients: n, maxRequests: int64(n), duration: mediaBulkTimeout}, r.server.pid(),
		func(ctx context.Context, w *worker, _ int64) (bool, error) {
			resp, err := callType(ctx, client, w, http.MethodPost, r.server.base+"/api/v1/images", r.user(w).token, contentType, body)
			if err != nil {
				return false, err
			}
			if _, err := uploadedImages(resp, w, mediaBulkFiles); err != nil {
				return false, err
			}
			ok.Add(1)
			return false, nil
		})
	stopPerf()
	waitProfile()
	fig.bulk = r.record(res, false)
	fig.bulkOK = ok.Load()
	sampler := startRSS(r.server.pid())
	left, took, err := r.waitThumbnails(ctx)
	fig.bulkDrainRSS = sampler.finish()
	fig.bulkLeft, fig.bulkDrain = left, took
	if err != nil {
		logf("bulk upload thumbnails: %v", err)
	}
	logf("bulk uploads: %d of %d answered 201; %d thumbnails pending made in %s, peak RSS meanwhile %s", fig.bulkOK, n, left, took.Round(time.Millisecond), mib(fig.bulkDrainRSS))
	return ctx.Err()
}

// serveMediaCeiling is a media ceiling process: with envMediaCeilingFile, http.ServeFile of
// that file on every path; otherwise the upload ceiling.
func serveMediaCeiling() error {
	addr := os.Getenv(envMediaCeilingAddr)
	if file := os.Getenv(envMediaCeilingFile); file != "" {
		return listenCeiling(addr, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == "/livez" {
				w.WriteHeader(http.StatusOK)
				return
			}
			http.ServeFile(w, req, file) //nolint:gosec // G703: the one file the runner named, whatever the path asked
		}))
	}
	return serveUploadCeiling(addr)
}

// serveUploadCeiling is the upload ceiling: a bare net/http server that reads each request's
// multipart body (within the service's request limit) part by part and writes every file
// part's bytes with fsstore.Put, the server's own filesystem store, opened on the server's own
// folder, under mediaCeilingPrefix/<the token's user>/<a UUIDv7> (the server's keys are
// media/<user>/<UUIDv7>); then it answers with the status, headers and body of a captured
// upload answer.
func serveUploadCeiling(addr string) error {
	cr, err := readCaptured(os.Getenv(envMediaCeilingResponse))
	if err != nil {
		return err
	}
	limit, err := strconv.ParseInt(os.Getenv(envMediaCeilingLimit), 10, 64)
	if err != nil {
		return err
	}
	// No sweep: the server's store sweeps its own temporaries.
	store, err := fsstore.New(os.Getenv(envMediaCeilingStore), fsstore.Options{StaleAge: -1})
	if err != nil {
		return err
	}
	defer store.Close()
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/livez" {
			w.WriteHeader(http.StatusOK)
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, limit)
		mr, err := req.MultipartReader()
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
			return
		}
		owner := tokenSubject(strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if part.FileName() == "" {
				_, _ = io.Copy(io.Discard, part)
				continue
			}
			id, err := uuid.NewV7()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if _, err := store.Put(req.Context(), mediaCeilingPrefix+"/"+owner+"/"+id.String(), part, -1, "image/jpeg"); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		cr.write(w)
	})
	return listenCeiling(addr, handler)
}

// tokenSubject reads the sub claim of an access token without verifying it ("anonymous"
// when there is none): the upload ceiling keeps each user's objects in a folder of their own,
// as the server does.
func tokenSubject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) == 3 {
		if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			var c struct {
				Sub string `json:"sub"`
			}
			if json.Unmarshal(raw, &c) == nil && c.Sub != "" && !strings.ContainsAny(c.Sub, "/.") {
				return c.Sub
			}
		}
	}
	return "anonymous"
}

// Report.

func (f *mediaFigures) uploadRatio() float64 { return safeRatio(f.upload.Rate(), f.ceiling.Rate()) }
func (f *mediaFigures) getRatio() float64    { return safeRatio(f.get.Rate(), f.serve.Rate()) }

func safeRatio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// checks are the media targets besides the two ratios (which are in the report's ratios).
func (f *mediaFigures) checks() []check {
	if f == nil || f.bulk.Requests == 0 {
		return nil
	}
	return []check{{
		name:     fmt.Sprintf("peak RSS while %d clients upload %d × 1 MiB files", f.bulk.Clients, mediaBulkFiles),
		measured: fmt.Sprintf("%s (%d of %d answered 201)", mib(f.bulk.PeakRSS), f.bulkOK, f.bulk.Clients),
		target:   "< " + mib(peakRSSLimit),
		met:      f.bulk.PeakRSS > 0 && f.bulk.PeakRSS < peakRSSLimit && f.bulkOK == int64(f.bulk.Clients),
	}}
}

func (f *mediaFigures) thumbnailBacklog() string {
	parts := make([]string, len(f.backlog))
	for i := range f.backlog {
		parts[i] = fmt.Sprintf("%d pending, made in %s", f.backlog[i], roundDur(f.drain[i]))
	}
	return strings.Join(parts, "; ")
}

func (f *mediaFigures) printText(w io.Writer) {
	if f == nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "images\tmeasured\n")
	fmt.Fprintf(tw, "upload / upload ceiling (net/http + fsstore.Put)\t%.3f (%.0f / %.0f per s)\n", f.uploadRatio(), f.upload.Rate(), f.ceiling.Rate())
	fmt.Fprintf(tw, "thumbnail backlog after each upload turn\t%s\n", f.thumbnailBacklog())
	fmt.Fprintf(tw, "public GET / http.ServeFile\t%.3f (%.0f / %.0f per s)\n", f.getRatio(), f.get.Rate(), f.serve.Rate())
	if f.bulk.Requests > 0 {
		fmt.Fprintf(tw, "bulk uploads\t%d of %d answered 201 in %s, peak RSS %s; thumbnails made %s later, peak RSS then %s\n", f.bulkOK, f.bulk.Clients,
			f.bulk.Elapsed.Round(time.Millisecond), mib(f.bulk.PeakRSS), f.bulkDrain.Round(time.Millisecond), mib(f.bulkDrainRSS))
	}
	fmt.Fprintf(tw, "thumbnail jobs failed, whole run\t%d\n", f.failedThumbnails)
	_ = tw.Flush()
	fmt.Fprintln(w)
}

func (f *mediaFigures) markdown(w io.Writer, opts options) {
	if f == nil {
		return
	}
	j := f.jpeg
	fmt.Fprintf(w, "## Images\n\n")
	fmt.Fprintf(w, "The JPEG is generated by the runner: %d × %d pixels of noise (so that it does not compress) encoded by `image/jpeg` at quality %d, the highest that keeps the file at most 1 MiB, "+
		"with a %d-byte EXIF APP1 segment inserted after SOI (make, model with a serial number, software, date, orientation 1 and a GPS position): %d bytes; the server stores %d bytes of it. "+
		"The server runs with its default media settings and the filesystem store in `<data dir>/media`.\n\n",
		j.width, j.height, j.quality, j.exifBytes, len(j.body), f.stored)
	fmt.Fprintf(w, "| figure | measured |\n|---|---|\n")
	fmt.Fprintf(w, "| upload / upload ceiling (target ≥ 0.6) | %.3f (%.0f / %.0f per s) |\n", f.uploadRatio(), f.upload.Rate(), f.ceiling.Rate())
	fmt.Fprintf(w, "| thumbnail jobs still pending at the end of each upload turn, and the time they then took | %s |\n", f.thumbnailBacklog())
	fmt.Fprintf(w, "| public `GET /images/{id}/content` without a token / `http.ServeFile` of the stored file (target ≥ 0.7) | %.3f (%.0f / %.0f per s) |\n", f.getRatio(), f.get.Rate(), f.serve.Rate())
	if f.bulk.Requests > 0 {
		fmt.Fprintf(w, "| %d clients each uploading %d files in one request (%d bytes) at once | %d of %d answered 201 in %s; server peak RSS %s |\n",
			f.bulk.Clients, mediaBulkFiles, f.bulkBytes, f.bulkOK, f.bulk.Clients, f.bulk.Elapsed.Round(time.Millisecond), mib(f.bulk.PeakRSS))
		fmt.Fprintf(w, "| their thumbnails, after the last upload was answered | %d pending, all made %s later; server peak RSS meanwhile %s |\n",
			f.bulkLeft, f.bulkDrain.Round(time.Millisecond), mib(f.bulkDrainRSS))
	}
	fmt.Fprintf(w, "| thumbnail jobs failed, whole run | %d |\n\n", f.failedThumbnails)
	fmt.Fprintf(w, "- Upload: `POST /api/v1/images` of a multipart body holding the JPEG as one `file` part, from %d keep-alive clients, client *i* as user *i* mod %d, each answer checked to be 201 with one `image/jpeg` image. "+
		"In %d turns with the ceiling (same clients, same body, same client code). Each upload queues a thumbnail job, which runs in the server beside the uploads; "+
		"after each of the server's turns the runner waits, outside the turn's timing, until no thumbnail job is left, so the ceiling's turns run on a quiet server.\n",
		opts.clients, opts.users, opts.rounds)
	fmt.Fprintf(w, "- Upload ceiling: this runner started again as a process of its own, a bare `net/http` server with the service's timeouts that reads the multipart body part by part (`Request.MultipartReader`, within the service's request limit) "+
		"and writes each file part's bytes with the server's own filesystem store (`fsstore.Put`: a temporary file, fsync, rename, fsync of the folder) opened on the server's own folder (`%s/` keys, one folder per user as the server's `media/` keys), "+
		"then answers with the status, headers and body of an upload answer captured from the server. It neither authenticates the caller nor looks at the image, hashes it or records it in the database, as the server does.\n", mediaCeilingPrefix)
	fmt.Fprintf(w, "- Public GET: the first uploaded image is made public (`PATCH {\"visibility\":\"public\"}`), one anonymous GET is checked byte for byte against the stored file (and for the absence of EXIF and of the serial), "+
		"then every client reads it without a token, each answer checked to be 200 with the whole file. Serve ceiling: this runner started again as a process of its own, answering every request with `http.ServeFile` of that same stored file.\n")
	if f.bulk.Requests > 0 {
		fmt.Fprintf(w, "- Bulk uploads: one body of %d `file` parts, each the JPEG above, is sent by each of -media-bulk-uploads (%d) clients at once, once each, from memory; each must be answered 201 with %d images. "+
			"The peak RSS is the server's during the uploads (VmHWM and VmRSS polled every 20 ms); the runner then waits for their thumbnails and reports the peak meanwhile too.\n",
			mediaBulkFiles, f.bulk.Clients, mediaBulkFiles)
	}
	fmt.Fprintln(w)
}
