package argon2id

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// params are the Argon2id cost parameters recorded in every hash.
type params struct {
	memory      uint32 // KiB
	iterations  uint32
	parallelism uint8
}

// Bounds on what Verify accepts from a stored hash. Stored hashes come from this service, but a
// corrupted or planted row must not make a single login allocate gigabytes or spin for
// minutes, nor be accepted with a trivially short key.
const (
	maxMemoryKiB  = 1 << 20 // 1 GiB
	maxIterations = 64
	minSaltLen    = 8
	maxSaltLen    = 64
	minKeyLen     = 16
	maxKeyLen     = 128
)

// b64 is the PHC string format's base64: standard alphabet, no padding. Strict decoding
// rejects non-canonical trailing bits, so each hash has exactly one accepted spelling.
var b64 = base64.RawStdEncoding.Strict()

// encode formats $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>.
func encode(p params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.iterations, p.parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

type decoded struct {
	params params
	salt   []byte
	key    []byte
}

// keyLen is the length of the stored key, which decode has bounded by maxKeyLen.
func (d decoded) keyLen() uint32 {
	n := len(d.key)
	if n > maxKeyLen {
		return 0
	}
	return uint32(n)
}

// decode parses a PHC string strictly: exact field order, decimal numbers without signs, the
// one version this package implements, and the bounds above. Every failure wraps
// ErrMalformedHash and says which part is wrong, without echoing the hash itself.
func decode(s string) (decoded, error) {
	fields := strings.Split(s, "$")
	if len(fields) != 6 || fields[0] != "" {
		return decoded{}, fmt.Errorf("%w: want 5 $-separated fields", ErrMalformedHash)
	}
	if fields[1] != "argon2id" {
		return decoded{}, fmt.Errorf("%w: algorithm is not argon2id", ErrMalformedHash)
	}
	version, ok := strings.CutPrefix(fields[2], "v=")
	if !ok {
		return decoded{}, fmt.Errorf("%w: missing version", ErrMalformedHash)
	}
	if v, err := parseUint(version, 32); err != nil || v != argon2.Version {
		return decoded{}, fmt.Errorf("%w: unsupported version", ErrMalformedHash)
	}
	p, err := decodeParams(fields[3])
	if err != nil {
		return decoded{}, err
	}
	salt, err := b64.DecodeString(fields[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return decoded{}, fmt.Errorf("%w: bad salt", ErrMalformedHash)
	}
	key, err := b64.DecodeString(fields[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return decoded{}, fmt.Errorf("%w: bad key", ErrMalformedHash)
	}
	return decoded{params: p, salt: salt, key: key}, nil
}

func decodeParams(s string) (params, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return params{}, fmt.Errorf("%w: want m, t and p parameters", ErrMalformedHash)
	}
	var values [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		raw, ok := strings.CutPrefix(parts[i], name)
		if !ok {
			return params{}, fmt.Errorf("%w: parameter %d is not %s", ErrMalformedHash, i+1, name[:1])
		}
		v, err := parseUint(raw, 32)
		if err != nil || v == 0 {
			return params{}, fmt.Errorf("%w: bad %s parameter", ErrMalformedHash, name[:1])
		}
		values[i] = v
	}
	m, t, p := values[0], values[1], values[2]
	// Argon2 needs at least 8 KiB per lane; argon2.IDKey would silently raise a smaller value,
	// which would then never match what the hash claims.
	if p > math.MaxUint8 || m < 8*p || m > maxMemoryKiB || t > maxIterations {
		return params{}, fmt.Errorf("%w: parameters out of range", ErrMalformedHash)
	}
	return params{memory: uint32(m), iterations: uint32(t), parallelism: uint8(p)}, nil
}

// parseUint accepts only plain decimal digits: no sign, no leading zeros, no spaces, so that
// a hash has one spelling.
func parseUint(s string, bits int) (uint64, error) {
	if s == "" || s[0] < '0' || s[0] > '9' || (len(s) > 1 && s[0] == '0') {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseUint(s, 10, bits)
}
