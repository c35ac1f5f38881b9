package ecg

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math"
	"math/bits"
	"strconv"
)

// MaxSamples is the most samples one lead's signal holds: 1,000,000 (33 minutes at 500 Hz).
const MaxSamples = 1_000_000

// Signal describes one lead's samples as they were received, without holding them: their
// count, the length of their decimal text and a hash that identifies them.
type Signal struct {
	// Samples is the number of samples.
	Samples int
	// TextBytes is the length of the samples written as decimal integers separated by commas
	// ("12,-3,0" is 7): what the signal's array holds between its brackets in JSON.
	TextBytes int64
	// Hash is the SHA-256 of the samples as little-endian int32s, in order.
	Hash [sha256.Size]byte
}

// SignalWriter receives one lead's samples in order, as a decoder reads them, and cuts them
// into packed blocks for a BlockSink. It enforces the signal's limits as the samples arrive,
// so a decoder stops at the first sample that breaks one instead of reading on.
type SignalWriter struct {
	sink   BlockSink
	lead   int
	name   func() string
	seq    int
	n      int
	text   int64
	buf    []int32
	packed []byte
	raw    [4096]byte // the little-endian bytes being hashed, a chunk at a time
	sum    []byte
	hash   hash.Hash
}

// NewSignalWriter starts the signal of the lead at position lead; name returns the lead's
// name as far as it is known (it may come after the signal in the document), for errors.
// Buffers are reused from w when it is not nil.
func NewSignalWriter(w *SignalWriter, sink BlockSink, lead int, name func() string) *SignalWriter {
	if w == nil {
		w = &SignalWriter{buf: make([]int32, 0, MaxBlockSamples), hash: sha256.New()}
	}
	w.sink, w.lead, w.name = sink, lead, name
	w.seq, w.n, w.text = 0, 0, 0
	w.buf = w.buf[:0]
	w.hash.Reset()
	return w
}

// Add appends the next sample. v is the value the decoder read; a value outside the signed
// 32-bit range, or a sample past MaxSamples, is a validation error naming the lead and the
// sample's index.
func (w *SignalWriter) Add(v int64) error {
	if w.n >= MaxSamples {
		return SampleError(w.lead, w.name(), w.n, "is one too many: a signal holds at most 1000000 samples")
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return SampleError(w.lead, w.name(), w.n, "must be within the signed 32-bit range (-2147483648 to 2147483647)")
	}
	w.buf = append(w.buf, int32(v))
	w.n++
	w.text += int64(decimalLen(v))
	if len(w.buf) == MaxBlockSamples {
		return w.flush()
	}
	return nil
}

// Close flushes the last block and describes the signal. An empty signal is reported by the
// aggregate (New), with the lead's other problems.
func (w *SignalWriter) Close() (Signal, error) {
	if len(w.buf) > 0 {
		if err := w.flush(); err != nil {
			return Signal{}, err
		}
	}
	s := Signal{Samples: w.n, TextBytes: w.text}
	if w.n > 1 {
		s.TextBytes += int64(w.n - 1) // the commas
	}
	w.sum = w.hash.Sum(w.sum[:0])
	copy(s.Hash[:], w.sum)
	return s, nil
}

func (w *SignalWriter) flush() error {
	for rest := w.buf; len(rest) > 0; {
		n := min(len(rest), len(w.raw)/4)
		w.hash.Write(appendLittleEndian(w.raw[:0], rest[:n]))
		rest = rest[n:]
	}
	w.packed = AppendPacked(w.packed[:0], w.buf)
	err := w.sink.Put(Block{Lead: w.lead, Seq: w.seq, Samples: len(w.buf), Data: w.packed})
	w.seq++
	w.buf = w.buf[:0]
	return err
}

// appendLittleEndian appends samples as little-endian int32s: what Signal.Hash hashes.
func appendLittleEndian(dst []byte, samples []int32) []byte {
	for _, v := range samples {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(v)) //nolint:gosec // G115: two's complement bits
	}
	return dst
}

// SignalHash is the hash Signal.Hash records for samples, for checking samples read back
// against what was uploaded.
func SignalHash(samples []int32) [sha256.Size]byte {
	h := sha256.New()
	var chunk [4096]byte
	for len(samples) > 0 {
		n := min(len(samples), len(chunk)/4)
		h.Write(appendLittleEndian(chunk[:0], samples[:n]))
		samples = samples[n:]
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// decimalLen is the length of v (within int32) written in decimal, its minus sign included.
// It runs for every sample of every upload, so it has no branch that depends on v: ECG
// samples change sign and length all the time, and a loop over the powers of ten that
// mispredicted took 8 % of the server's CPU under ECG uploads. floor(log10) comes from the
// bit length (1233/4096 is just over log10(2)), and one comparison corrects it.
func decimalLen(v int64) int {
	sign := v >> 63
	u := uint64((v ^ sign) - sign) //nolint:gosec // G115: |v|, at most 2^31
	t := bits.Len64(u|1) * 1233 >> 12
	n := t + 1 - int(sign)
	if u < decimalBounds[t] {
		n--
	}
	return n
}

// decimalBounds[t] is the least number of t+1 digits, but 0 for t = 0, so that 0 has one.
var decimalBounds = [...]uint64{0, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000}

// AppendSignalText appends samples written as JSON does: decimal integers separated by
// commas, with a leading comma when more precedes them (first is false). Its output for a
// whole signal is exactly Signal.TextBytes long.
func AppendSignalText(dst []byte, samples []int32, first bool) []byte {
	for i, v := range samples {
		if i > 0 || !first {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, int64(v), 10)
	}
	return dst
}
