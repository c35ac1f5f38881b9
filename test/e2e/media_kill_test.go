package e2e

// Process-kill tests of the image repository: an image row never points at a missing object,
// a killed upload leaves no image, the objects it left are swept, and the objects of deleted
// images go even when the process dies right after the deletion committed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestImageKillDuringUploads starts concurrent uploads of several ~1 MB files, kills the
// process with SIGKILL while they run, and restarts it: every upload answered 201 is whole
// (each image's content is there, with its hash), every other left no image, and the objects
// the killed uploads left behind are removed by `server media gc`.
func TestImageKillDuringUploads(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := b.env(t)
			s := startServer(t, env, withFastHashing("APP_MEDIA_SWEEP_GRACE=1s")...)
			a := s.signup(uniqueEmail("img-kill"))
			files := []upload{{"a.png", noisyPNG(t, 256, 256)}, {"b.png", noisyPNG(t, 256, 256)}, {"c.png", noisyPNG(t, 256, 256)}}
			type outcome struct {
				status int
				images []imageDoc
			}
			outcomes := make([]outcome, 12)
			var wg sync.WaitGroup
			for i := range outcomes {
				wg.Go(func() {
					body, ct := multipartBody(t, nil, files)
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					req, _ := http.NewRequestWithContext(ctx, "POST", s.base+"/api/v1/images", bytes.NewReader(body))
					req.Header.Set("Content-Type", ct)
					req.Header.Set("Authorization", "Bearer "+a.Access)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						return // killed before it answered
					}
					defer resp.Body.Close()
					outcomes[i].status = resp.StatusCode
					if resp.StatusCode == http.StatusCreated {
						var out struct {
							Images []imageDoc `json:"images"`
						}
						if err := json.NewDecoder(resp.Body).Decode(&out); err == nil {
							outcomes[i].images = out.Images
						}
					}
				})
			}
			time.Sleep(time.Duration(200+rand.IntN(1000)) * time.Millisecond)
			s.kill()
			wg.Wait()
			s.start()

			answered := map[string]imageDoc{}
			for _, o := range outcomes {
				if o.status == http.StatusCreated {
					if len(o.images) != len(files) {
						t.Fatalf("an upload answered 201 with %d images, want %d", len(o.images), len(files))
					}
					for _, img := range o.images {
						answered[img.ID] = img
					}
				}
			}
			listed := s.listImages(a.Access, "/api/v1/images")
			if len(listed)%len(files) != 0 {
				t.Fatalf("%d images listed: a partial upload was kept", len(listed))
			}
			for _, img := range listed {
				content := s.do("GET", img.ContentURL, a.Access, nil)
				expect(t, content, http.StatusOK)
				if sha256Hex(content.Body) != img.SHA256 {
					t.Fatalf("image %s: stored bytes do not match its hash", img.ID)
				}
				delete(answered, img.ID)
			}
			if len(answered) != 0 {
				t.Fatalf("%d images answered 201 are missing after the restart", len(answered))
			}
			t.Logf("%d of %d uploads answered 201, %d images listed after the kill", countStatus(outcomes, func(o outcome) int { return o.status }), len(outcomes), len(listed))

			// The sweep removes what the killed uploads stored; what images refer to stays.
			time.Sleep(1100 * time.Millisecond)
			gc := runCLI(t, s.env, "", "media", "gc")
			if gc.Code != 0 {
				t.Fatalf("media gc: exit %d: %s", gc.Code, gc.Stderr)
			}
			known := map[string]bool{}
			for _, img := range listed {
				known[img.ID] = true
			}
			for _, path := range s.storedObjects("") {
				id := strings.TrimSuffix(filepath.Base(path), ".thumb")
				if !known[id] {
					t.Errorf("object %s has no image after media gc (%s)", path, strings.TrimSpace(gc.Stdout))
				}
			}
		})
	}
}

func countStatus[T any](items []T, status func(T) int) int {
	n := 0
	for _, it := range items {
		if status(it) == http.StatusCreated {
			n++
		}
	}
	return n
}

// TestImageKillAfterDelete deletes images and kills the process at once, before or while the
// job that removes their objects runs: after the restart the objects are gone.
func TestImageKillAfterDelete(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, b.env(t), killEnv(t)...)
			a := s.signup(uniqueEmail("img-kill-del"))
			imgs, _ := s.uploadImages(a.Access, nil, []upload{{"a.png", noisyPNG(t, 64, 64)}, {"b.png", noisyPNG(t, 64, 64)}}, http.StatusCreated)
			for _, img := range imgs {
				expect(t, s.do("GET", img.ThumbnailURL, a.Access, nil), http.StatusOK)
			}
			if n := len(s.storedObjects("")); n != 4 {
				t.Fatalf("%d objects before the delete, want 2 images and 2 thumbnails", n)
			}
			expect(t, s.do("POST", "/api/v1/images/delete", a.Access, map[string]any{"ids": ids(imgs)}), http.StatusNoContent)
			s.kill()
			left := len(s.storedObjects(""))
			s.start()
			waitFor(t, 15*time.Second, fmt.Sprintf("the objects of the deleted images to go (%d left at the kill)", left),
				func() bool { return len(s.storedObjects("")) == 0 })
		})
	}
}
