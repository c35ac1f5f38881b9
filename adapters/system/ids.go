package system

import (
	"encoding/binary"
	"io"
	"math/rand/v2"

	"github.com/google/uuid"

	"github.com/acme/postsvc/ports"
)

// IDs makes UUIDv7 identifiers. Their first 48 bits are the creation time in milliseconds and
// the next 12 a sub-millisecond sequence that the uuid package keeps strictly increasing within
// the process, so ids sort (as bytes and as their lower-case text) in creation order; the
// remaining 62 bits are random, so ids cannot be guessed from one another.
type IDs struct {
	// random supplies the random bits; nil means crypto/rand through uuid.NewV7. Tests set it
	// to a failing reader to exercise the fallback.
	random io.Reader
}

var _ ports.IDGenerator = (*IDs)(nil)

// NewIDs returns the UUIDv7 generator backed by crypto/rand.
func NewIDs() *IDs { return &IDs{} }

// NewID returns a new identifier in the canonical 36-character form.
func (g *IDs) NewID() string {
	var (
		id  uuid.UUID
		err error
	)
	if g.random == nil {
		id, err = uuid.NewV7()
	} else {
		id, err = uuid.NewV7FromReader(g.random)
	}
	if err != nil {
		// The port has no error result, and an id is needed to proceed. crypto/rand does not
		// fail on supported platforms since Go 1.24, but the uuid API still reports an error,
		// so fall back to the runtime-seeded generator of math/rand/v2. Ordering does not
		// suffer: the timestamp and sequence come from the same monotonic source either way.
		// The ids stay unpredictable to clients, though no longer cryptographically so; they
		// are not secrets, since every read is authorised separately.
		id, err = uuid.NewV7FromReader(runtimeRandom{})
		if err != nil {
			// runtimeRandom never fails, so this is unreachable; keep the nil UUID rather than
			// panic should the library ever change.
			return uuid.Nil.String()
		}
	}
	return id.String()
}

// runtimeRandom is an io.Reader over math/rand/v2's global generator, which the runtime seeds
// from the operating system at start-up and which cannot fail.
type runtimeRandom struct{}

func (runtimeRandom) Read(p []byte) (int, error) {
	var buf [8]byte
	for i := 0; i < len(p); i += len(buf) {
		binary.LittleEndian.PutUint64(buf[:], rand.Uint64())
		copy(p[i:], buf[:])
	}
	return len(p), nil
}
