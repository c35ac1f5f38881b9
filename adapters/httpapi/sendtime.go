package httpapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// MinSendRate is the slowest a client may read a large answer, in bytes per second: an
// answer of size bytes gets APP_HTTP_WRITE_TIMEOUT plus size / MinSendRate to be sent from
// the moment its sending starts (SendTimeFor), 64 KiB/s being a poor mobile link. Without it
// the write timeout bounded the whole answer whatever its size, and a client reading below
// about 0.9 MB/s got a 54 MB ECG cut short at 60 s, however steadily it read.
const MinSendRate = 64 << 10

// sendTimeFrom is the size from which an answer gets its own send time: a smaller one leaves
// the server's write timeout as it is (the hot paths then make no call), which at
// MinSendRate is plenty for it.
const sendTimeFrom = 1 << 20

// SendTimeFor tells the kernel that the route is about to send an answer of size bytes: the
// connection's write deadline becomes now plus APP_HTTP_WRITE_TIMEOUT plus the time that size
// takes at MinSendRate. StartJSONStream and WriteEncodedJSON call it; a route that answers
// large bodies another way (http.ServeContent) calls it before writing. With no write timeout
// it does nothing.
func SendTimeFor(c *gin.Context, size int64) {
	wt := kernelOf(c).writeTimeout
	if wt <= 0 || size < sendTimeFrom {
		return
	}
	size = min(size, 1<<40) // no overflow below
	at := time.Now().Add(wt + time.Duration(size)*time.Second/MinSendRate)
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(at)
}
