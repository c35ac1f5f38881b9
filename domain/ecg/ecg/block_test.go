package ecg

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// ecgLike is a smooth wave with noise, as ECG leads look: neighbouring samples differ by little.
func ecgLike(n int, seed uint64) []int32 {
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(800*math.Sin(float64(i)/35)+300*math.Sin(float64(i)/7)) + int32(r.IntN(21)) - 10
	}
	return out
}

func roundTrip(t *testing.T, samples []int32) []byte {
	t.Helper()
	packed := AppendPacked(nil, samples)
	if n, err := PackedSamples(packed); err != nil || n != len(samples) {
		t.Fatalf("PackedSamples = %d, %v; want %d", n, err, len(samples))
	}
	got, err := AppendUnpacked(nil, packed)
	if err != nil {
		t.Fatalf("unpack: %v", err)
	}
	if !slices.Equal(got, samples) {
		t.Fatalf("round trip changed the samples")
	}
	return packed
}

// TestPackedRoundTrip: whatever the samples, unpacking gives them back exactly, and a block
// never takes more than 4 bytes a sample plus its header.
func TestPackedRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	random := make([]int32, 5000)
	for i := range random {
		random[i] = int32(r.Uint32())
	}
	alternating := make([]int32, 5000)
	for i := range alternating {
		alternating[i] = math.MaxInt32
		if i%2 == 1 {
			alternating[i] = math.MinInt32
		}
	}
	for name, samples := range map[string][]int32{
		"one":         {42},
		"zeros":       make([]int32, 1000),
		"extremes":    {math.MinInt32, math.MaxInt32, 0, -1, 1, math.MinInt32},
		"ecg-like":    ecgLike(5000, 3),
		"random":      random,
		"alternating": alternating,
		"full block":  ecgLike(MaxBlockSamples, 4),
	} {
		t.Run(name, func(t *testing.T) {
			packed := roundTrip(t, samples)
			if limit := 1 + 3 + 4*len(samples); len(packed) > limit {
				t.Fatalf("%d bytes for %d samples, more than 4 a sample", len(packed), len(samples))
			}
		})
	}
	// ECG-like signals are what the delta encoding is for: under 2 bytes a sample.
	if packed := AppendPacked(nil, ecgLike(5000, 5)); len(packed) > 2*5000 {
		t.Fatalf("ECG-like lead packs to %d bytes, want under 2 a sample", len(packed))
	}
	// Deterministic: the same samples give the same bytes.
	a, b := AppendPacked(nil, random), AppendPacked(nil, slices.Clone(random))
	if !slices.Equal(a, b) {
		t.Fatal("packing is not deterministic")
	}
}

// TestCorruptBlocksAreRefused: storage handing back bytes this package did not write is an
// error, never wrong samples.
func TestCorruptBlocksAreRefused(t *testing.T) {
	good := AppendPacked(nil, ecgLike(100, 1))
	raw := AppendPacked(nil, []int32{math.MaxInt32, math.MinInt32, math.MaxInt32})
	if raw[0] != encodingRaw {
		t.Fatal("alternating extremes should pack raw")
	}
	overflow := []byte{encodingDelta, 2, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0xfe, 0xff, 0xff, 0xff, 0x0f} // +2^31-1 twice
	for name, data := range map[string][]byte{
		"empty":            nil,
		"header only":      {encodingDelta},
		"unknown encoding": append([]byte{9}, good[1:]...),
		"truncated":        good[:len(good)-1],
		"trailing byte":    append(slices.Clone(good), 0),
		"raw truncated":    raw[:len(raw)-1],
		"count too large":  {encodingDelta, 0x81, 0x80, 0x08},
		"out of int32":     overflow,
	} {
		if _, err := AppendUnpacked(nil, data); !errors.Is(err, ErrCorruptBlock) {
			t.Errorf("%s: %v, want ErrCorruptBlock", name, err)
		}
	}
}

func BenchmarkPack(b *testing.B) {
	lead := ecgLike(5000, 1)
	b.SetBytes(12 * 5000 * 4)
	var dst []byte
	for b.Loop() {
		for range 12 {
			dst = AppendPacked(dst[:0], lead)
		}
	}
	b.ReportMetric(float64(len(dst))/5000, "bytes/sample")
}

func BenchmarkUnpack(b *testing.B) {
	packed := AppendPacked(nil, ecgLike(5000, 1))
	b.SetBytes(12 * 5000 * 4)
	dst := make([]int32, 0, 5000)
	for b.Loop() {
		for range 12 {
			var err error
			if dst, err = AppendUnpacked(dst[:0], packed); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func TestDecimalLen(t *testing.T) {
	values := []int64{0, math.MaxInt32, math.MinInt32, math.MaxInt32 - 1, math.MinInt32 + 1}
	// Either side of every power of ten and of two within int32, both signs.
	for p := int64(1); p <= math.MaxInt32; p *= 10 {
		values = append(values, p-1, p, p+1, -(p - 1), -p, -(p + 1))
	}
	for p := int64(1); p <= math.MaxInt32; p *= 2 {
		values = append(values, p-1, p, p+1, -(p - 1), -p, -(p + 1))
	}
	for _, v := range values {
		if got, want := decimalLen(v), len(fmt.Sprint(v)); got != want {
			t.Errorf("decimalLen(%d) = %d, want %d", v, got, want)
		}
	}
}
