package paging_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/acme/postsvc/application/paging"
)

func TestLimit(t *testing.T) {
	cases := map[int]struct {
		want int
		ok   bool
	}{0: {20, true}, 1: {1, true}, 100: {100, true}, 101: {0, false}, -1: {0, false}}
	for in, c := range cases {
		got, err := paging.Limit(in)
		if c.ok != (err == nil) || got != c.want {
			t.Errorf("Limit(%d) = %d, %v", in, got, err)
		}
		// Every refusal is the one message of an invalid limit, which names the range.
		if err != nil && err.Error() != "limit must be an integer from 1 to 100, written in the digits 0-9." {
			t.Errorf("Limit(%d): %q", in, err)
		}
	}
}

func TestCursorRoundTripAndGarbage(t *testing.T) {
	id := "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	got, err := paging.Decode(paging.Encode(id))
	if err != nil || got != id {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	if got, err := paging.Decode(""); err != nil || got != "" {
		t.Fatalf(`Decode("") = %q, %v; want the first page`, got, err)
	}
	for _, bad := range []string{"!!!", "%27%20OR%201=1", paging.Encode("a' OR 1=1 --"), string(make([]byte, 200))} {
		if _, err := paging.Decode(bad); err == nil {
			t.Errorf("Decode(%q) must fail", bad)
		}
	}
}

// TestCursorsCarryIssuableIDsOnly refuses cursors that decode cleanly but to something no id
// of this service can be: the forged cursor (base64 of "zzzz") among them.
func TestCursorsCarryIssuableIDsOnly(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	forged := map[string]string{
		"zzzz":                  enc([]byte("zzzz")),
		"letters and digits":    enc([]byte("abc123")),
		"UUIDv4":                enc([]byte("0b9f6c1e-8d7a-4a43-9a55-2f2f5d0b7c11")),
		"upper case UUIDv7":     enc([]byte("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B")),
		"UUIDv7 without dashes": enc([]byte("0190a1b2c3d47e5f8a9b0c1d2e3f4a5b")),
		"braced UUIDv7":         enc([]byte("{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}")),
		"wrong variant":         enc([]byte("0190a1b2-c3d4-7e5f-ca9b-0c1d2e3f4a5b")),
		"non-hex digit":         enc([]byte("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g")),
		"padded encoding":       base64.URLEncoding.EncodeToString([]byte("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")) + "==",
		"trailing newline":      enc([]byte("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")) + "\n",
	}
	for name, cursor := range forged {
		if id, err := paging.Decode(cursor); err == nil {
			t.Errorf("%s: Decode(%q) = %q, want a validation error", name, cursor, id)
		}
	}
}

// uuidV7 makes an id the way RFC 9562 lays out UUIDv7 (48 bits of Unix milliseconds, the
// version, 12 bits, the variant, 62 bits), with the standard library only: this layer may
// not import the uuid package that adapters/system uses.
func uuidV7(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(time.Now().UnixMilli()))
	copy(b[:6], ms[2:])
	b[6] = 0x70 | b[6]&0x0f
	b[8] = 0x80 | b[8]&0x3f
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// TestRealIDsAreValid checks ValidID against ids laid out as the service issues them, so the
// check can never refuse a real cursor (the end-to-end suite pages through real ones).
func TestRealIDsAreValid(t *testing.T) {
	for range 1000 {
		id := uuidV7(t)
		if !paging.ValidID(id) {
			t.Fatalf("ValidID(%q) = false for a real id", id)
		}
		if got, err := paging.Decode(paging.Encode(id)); err != nil || got != id {
			t.Fatalf("round trip of %q: %q, %v", id, got, err)
		}
	}
	for _, bad := range []string{"", "zzzz", "p-1", "00000000000000000001", "0b9f6c1e-8d7a-4a43-9a55-2f2f5d0b7c11"} {
		if paging.ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}
