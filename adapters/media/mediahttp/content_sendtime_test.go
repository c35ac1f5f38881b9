package mediahttp_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/media/mediahttp"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain/identity"
	"github.com/acme/postsvc/domain/media/image"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/testhttp"
)

const largeSize = 6 << 20

// largeObject is a stored image of largeSize bytes.
type largeObject struct{ *bytes.Reader }

func (largeObject) Close() error { return nil }
func (largeObject) Info() ports.ObjectInfo {
	return ports.ObjectInfo{Key: "k", Size: largeSize, Modified: time.Unix(1700000000, 0)}
}

type largeService struct{ contentService }

func (largeService) Content(context.Context, identity.Principal, string) (*image.Image, ports.Object, error) {
	return servedImage(), largeObject{bytes.NewReader(make([]byte, largeSize))}, nil
}

// TestLargeContentOutlastsTheWriteTimeoutForSteadyReaders: a client reading a 6 MiB image
// steadily at about 3 MiB/s gets all of it although that takes ten times the write timeout:
// the content route gives the answer its send time (httpapi.SendTimeFor) before
// http.ServeContent writes it. Before, it was cut off at the write timeout.
func TestLargeContentOutlastsTheWriteTimeoutForSteadyReaders(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	const writeTimeout = 200 * time.Millisecond
	r, err := httpapi.NewRouter(httpapi.RouterDeps{
		Modules:        []httpapi.Module{mediahttp.New(largeService{}, mediahttp.Settings{MaxFileBytes: 1 << 20, MaxFiles: 5, MaxRequestBytes: 1 << 20})},
		Authenticators: []ports.Authenticator{fakeAuth{}},
		HTTP:           config.HTTP{RequestTimeout: 5 * time.Second, WriteTimeout: writeTimeout},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := testhttp.ServeWithWriteTimeout(t, r, writeTimeout)
	status, got, err := testhttp.ReadSlowly(addr, "/api/v1/images/x/content", 3<<20)
	if err != nil || status != http.StatusOK || got != largeSize {
		t.Fatalf("image content read at 3 MiB/s: status %d, %d of %d bytes, %v", status, got, largeSize, err)
	}
}
