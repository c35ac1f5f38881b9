package mediahttp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/media/mediahttp"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
)

// boundedObject is a store's object that records the bound it is given and, like a store
// that fetched only up to it, cannot be read past it.
type boundedObject struct {
	servedObject
	end *int64
}

func (o boundedObject) BoundReads(end int64) { *o.end = end }

func (o boundedObject) Read(p []byte) (int, error) {
	pos, _ := o.Seek(0, io.SeekCurrent)
	if *o.end >= 0 && pos >= *o.end {
		return 0, errors.New("read past the bound")
	}
	if *o.end >= 0 && int64(len(p)) > *o.end-pos {
		p = p[:*o.end-pos]
	}
	return o.servedObject.Read(p)
}

type boundedService struct {
	contentService
	end *int64
}

func (s boundedService) Content(context.Context, identity.Principal, string) (*image.Image, ports.Object, error) {
	return servedImage(), boundedObject{servedObject{bytes.NewReader(served)}, s.end}, nil
}

// TestContentRangesBoundTheStoreReads: the content route tells the object where the ranges it
// serves end, so that a remote store fetches them and no more; the bound is never short of a
// byte the answer holds.
func TestContentRangesBoundTheStoreReads(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	end := int64(-1)
	r, err := httpapi.NewRouter(httpapi.RouterDeps{
		Modules:        []httpapi.Module{mediahttp.New(boundedService{end: &end}, mediahttp.Settings{MaxFileBytes: 1 << 20, MaxFiles: 5, MaxRequestBytes: 1 << 20})},
		Authenticators: []ports.Authenticator{fakeAuth{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rng    string
		status int
		bound  int64
		body   []byte // nil: not checked (multipart)
	}{
		{"", http.StatusOK, -1, served},
		{"bytes=10-19", http.StatusPartialContent, 20, served[10:20]},
		{"bytes=0-0", http.StatusPartialContent, 1, served[:1]},
		{"bytes=-5", http.StatusPartialContent, 100, served[95:]},
		{"bytes=90-", http.StatusPartialContent, 100, served[90:]},
		{"bytes=0-1,50-59", http.StatusPartialContent, 60, nil},
	} {
		end = -1
		req := httptest.NewRequest(http.MethodGet, "/api/v1/images/0190a1b2-0000-7000-8000-000000000001/content", nil)
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != tc.status || end != tc.bound || (tc.body != nil && !bytes.Equal(rec.Body.Bytes(), tc.body)) {
			t.Errorf("Range %q: %d, bound %d, %d bytes; want %d, bound %d, %d bytes", tc.rng, rec.Code, end, rec.Body.Len(), tc.status, tc.bound, len(tc.body))
		}
		if tc.body == nil && (!bytes.Contains(rec.Body.Bytes(), served[50:60]) || !bytes.Contains(rec.Body.Bytes(), served[:2])) {
			t.Errorf("Range %q: the multipart answer lacks a range", tc.rng)
		}
	}
}
