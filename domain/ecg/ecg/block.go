package ecg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// A lead's signal is kept as a sequence of blocks, each holding up to MaxBlockSamples samples
// packed on its own. Blocks bound what any one piece of code holds of a long signal (a
// 1,000,000-sample lead is 16 blocks) and are what storage writes, never one row per sample
// and never JSON text.
//
// A packed block is one encoding byte, the sample count as an unsigned varint, and the
// payload:
//
//   - encodingDelta: each sample's difference to the one before it (the first sample's to
//     zero), zigzag-mapped and written as an unsigned varint. Neighbouring ECG samples differ
//     by little, so most take one or two bytes.
//   - encodingRaw: each sample as a little-endian int32, used when the varints would be longer
//     (a signal that jumps by more than 2^27 at a time), so a sample never takes more than 4
//     bytes.
//
// The encoding is deterministic: the same samples always pack to the same bytes.

// MaxBlockSamples is the most samples one block holds.
const MaxBlockSamples = 1 << 16

// MaxBlockBytes bounds a packed block: the header and 4 bytes a sample.
const MaxBlockBytes = 1 + binary.MaxVarintLen32 + 4*MaxBlockSamples

const (
	encodingDelta byte = 1
	encodingRaw   byte = 2
)

// ErrCorruptBlock is a stored block that does not decode: storage returned something this
// package did not write.
var ErrCorruptBlock = errors.New("ecg: corrupt signal block")

// Block is one packed run of a lead's samples, as storage keeps it.
type Block struct {
	// Lead is the lead's position in the ECG, from 0.
	Lead int
	// Seq is the block's position in the lead, from 0.
	Seq int
	// Samples is how many samples the block holds.
	Samples int
	// Data is the packed samples (AppendPacked).
	Data []byte
}

// BlockSink receives the blocks of an ECG being uploaded, in order: lead by lead, each lead's
// blocks in sequence. Put must copy what it keeps of b.Data; the caller reuses it.
type BlockSink interface {
	Put(b Block) error
}

// Blocks hands back the blocks a BlockSink received, in the order they were put.
type Blocks interface {
	Each(fn func(b Block) error) error
}

// AppendPacked appends the packed form of samples (at most MaxBlockSamples) to dst.
func AppendPacked(dst []byte, samples []int32) []byte {
	if len(samples) > MaxBlockSamples {
		panic(fmt.Sprintf("ecg: %d samples in one block, at most %d", len(samples), MaxBlockSamples))
	}
	start := len(dst)
	dst = append(dst, encodingDelta)
	dst = binary.AppendUvarint(dst, uint64(len(samples)))
	// A zigzag delta of two int32s fits 33 bits: at most 5 varint bytes. The varints are
	// written by hand into room made once: AppendUvarint per sample costs twice as much.
	dst = slices.Grow(dst, 5*len(samples))
	buf := dst[len(dst) : len(dst)+5*len(samples)]
	pos := 0
	prev := int64(0)
	for _, s := range samples {
		d := int64(s) - prev
		prev = int64(s)
		z := uint64((d << 1) ^ (d >> 63)) //nolint:gosec // G115: zigzag, a bit-for-bit reinterpretation
		for z >= 0x80 {
			buf[pos] = byte(z) | 0x80
			z >>= 7
			pos++
		}
		buf[pos] = byte(z)
		pos++
	}
	if pos <= 4*len(samples) {
		return dst[:len(dst)+pos]
	}
	dst = dst[:start]
	dst = append(dst, encodingRaw)
	dst = binary.AppendUvarint(dst, uint64(len(samples)))
	for _, s := range samples {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(s)) //nolint:gosec // G115: two's complement bits, read back by int32()
	}
	return dst
}

// PackedSamples returns the sample count a packed block declares.
func PackedSamples(data []byte) (int, error) {
	if len(data) < 2 {
		return 0, ErrCorruptBlock
	}
	n, k := binary.Uvarint(data[1:])
	if k <= 0 || n > MaxBlockSamples {
		return 0, ErrCorruptBlock
	}
	return int(n), nil
}

// AppendUnpacked appends the samples of a packed block to dst. A block that does not decode
// exactly (unknown encoding, truncated, trailing bytes, a sample outside int32) is
// ErrCorruptBlock, never wrong samples.
func AppendUnpacked(dst []int32, data []byte) ([]int32, error) {
	n, err := PackedSamples(data)
	if err != nil {
		return dst, err
	}
	_, k := binary.Uvarint(data[1:])
	payload := data[1+k:]
	switch data[0] {
	case encodingRaw:
		if len(payload) != 4*n {
			return dst, ErrCorruptBlock
		}
		for i := range n {
			dst = append(dst, int32(binary.LittleEndian.Uint32(payload[4*i:]))) //nolint:gosec // G115: two's complement bits, as written
		}
		return dst, nil
	case encodingDelta:
		dst = slices.Grow(dst, n)
		var prev int64
		for range n {
			var z uint64
			if len(payload) > 0 && payload[0] < 0x80 {
				// Most deltas of an ECG fit one byte.
				z = uint64(payload[0])
				payload = payload[1:]
			} else {
				var k int
				z, k = binary.Uvarint(payload)
				if k <= 0 || k > 5 {
					return dst, ErrCorruptBlock
				}
				payload = payload[k:]
			}
			v := prev + (int64(z>>1) ^ -int64(z&1))
			if v < -1<<31 || v > 1<<31-1 {
				return dst, ErrCorruptBlock
			}
			dst = append(dst, int32(v))
			prev = v
		}
		if len(payload) != 0 {
			return dst, ErrCorruptBlock
		}
		return dst, nil
	}
	return dst, ErrCorruptBlock
}
