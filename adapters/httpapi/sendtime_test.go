package httpapi_test

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/test/testhttp"
)

// TestLargeAnswersOutlastTheWriteTimeoutForSteadyReaders: a client that reads a 6 MiB answer
// steadily at about 3 MiB/s, far above httpapi.MinSendRate, gets all of it although that takes
// ten times the server's write timeout, whether the answer is streamed (StartJSONStream, as an
// ECG or a post list is) or written whole (WriteEncodedJSON, a cached list). Before, the write
// timeout bounded every answer: the body stopped short of its Content-Length.
func TestLargeAnswersOutlastTheWriteTimeoutForSteadyReaders(t *testing.T) {
	const size = 6 << 20
	const writeTimeout = 200 * time.Millisecond
	doc := append(append([]byte(`"`), bytes.Repeat([]byte("a"), size-3)...), '"', '\n')
	e, err := httpapi.NewRouter(httpapi.RouterDeps{
		Modules: []httpapi.Module{testModule{routes: []httpapi.Route{
			{Method: http.MethodGet, Path: "/streamed", Handler: func(c *gin.Context) {
				js := httpapi.StartJSONStream(c, http.StatusOK, size)
				defer js.Finish()
				for i := 0; i < size; i += 64 << 10 {
					js.Raw(string(doc[i:min(i+64<<10, size)]))
				}
			}},
			{Method: http.MethodGet, Path: "/encoded", Handler: func(c *gin.Context) {
				httpapi.WriteEncodedJSON(c, http.StatusOK, doc)
			}},
		}}},
		HTTP: config.HTTP{RequestTimeout: 5 * time.Second, WriteTimeout: writeTimeout},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := testhttp.ServeWithWriteTimeout(t, e, writeTimeout)

	var wg sync.WaitGroup
	for _, path := range []string{"/streamed", "/encoded"} {
		wg.Go(func() {
			status, got, err := testhttp.ReadSlowly(addr, "/api/v1"+path, 3<<20)
			if err != nil || status != http.StatusOK || got != size {
				t.Errorf("GET %s read at 3 MiB/s: status %d, %d of %d bytes, %v", path, status, got, size, err)
			}
		})
	}
	wg.Wait()
}
