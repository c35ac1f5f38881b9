package ecggorm

import (
	"encoding/binary"
	"math"

	"github.com/acme/postsvc/domain/ecg/ecg"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// A row of ecg_blocks holds either one packed block, as the domain packs it (its first byte is
// the block's encoding, 1 or 2), or a bundle of consecutive blocks of the ECG: bundleTag, then
// for each block a frame of four unsigned varints (lead, seq, samples, data length) and the
// block's packed data. Either way the row is keyed by the position of its last block, its
// samples column counts all its samples, and data_bytes all its blocks' packed data (frame
// headers excluded: data_bytes is what read budgets count, repo.Blocks).
//
// Bundles exist because rows cost the database far more than bytes do. A typical ECG (12
// leads of 5,000 samples) packs to about 60 KB: as one row per block it was 12 rows and 12
// owner index entries. Measured with 32 clients uploading 3000 such ECGs against MariaDB while
// the analyses ran, MariaDB's CPU per ECG went from 2.27-2.49 ms to 1.42-1.48 ms, and uploads
// with their analyses from 321-324 to 445-455 a second, once the ECG became one row. Blocks
// join a bundle up to maxBundleBytes, the size of the largest single block, so no row grows
// past what a row already held; a large lead's full blocks stay one a row. Rows written
// before bundles existed are single blocks, and read as they always were.

// bundleTag starts a bundle's data. The domain's encodings are small numbers from 1.
const bundleTag byte = 0xFF

// maxBundleBytes bounds a bundle's data: that of the largest single block.
const maxBundleBytes = ecg.MaxBlockBytes

// frameHeaderMax bounds a frame's header: four varints of at most 32 bits.
const frameHeaderMax = 4 * binary.MaxVarintLen32

func appendFrameHeader(dst []byte, b ecg.Block) []byte {
	dst = binary.AppendUvarint(dst, uint64(b.Lead))       //nolint:gosec // G115: positions and sizes are not negative
	dst = binary.AppendUvarint(dst, uint64(b.Seq))        //nolint:gosec // G115: as above
	dst = binary.AppendUvarint(dst, uint64(b.Samples))    //nolint:gosec // G115: as above
	return binary.AppendUvarint(dst, uint64(len(b.Data))) //nolint:gosec // G115: as above
}

// appendRowBlocks appends the blocks one row holds. A bundle whose frames do not parse, or do
// not end at the row's own position, is appended as one block of the row's raw data, which
// the domain refuses to unpack (ecg.ErrCorruptBlock): the signal is reported damaged, never
// read wrong.
func appendRowBlocks(dst []ecg.Block, lead, seq, samples int, data []byte) []ecg.Block {
	whole := ecg.Block{Lead: lead, Seq: seq, Samples: samples, Data: data}
	if len(data) == 0 || data[0] != bundleTag {
		return append(dst, whole)
	}
	start := len(dst)
	rest := data[1:]
	total := 0
	for len(rest) > 0 {
		var f [4]uint64
		for i := range f {
			v, n := binary.Uvarint(rest)
			if n <= 0 || v > math.MaxInt32 {
				return append(dst[:start], whole)
			}
			f[i], rest = v, rest[n:]
		}
		if f[3] > uint64(len(rest)) {
			return append(dst[:start], whole)
		}
		b := ecg.Block{Lead: int(f[0]), Seq: int(f[1]), Samples: int(f[2]), Data: rest[:f[3]:f[3]]} //nolint:gosec // G115: each at most MaxInt32
		if len(dst) > start && !before(dst[len(dst)-1], ecgport.BlockPos{Lead: b.Lead, Seq: b.Seq}) {
			return append(dst[:start], whole)
		}
		dst = append(dst, b)
		total += b.Samples
		rest = rest[f[3]:]
	}
	last := len(dst) - 1
	if last < start || dst[last].Lead != lead || dst[last].Seq != seq || total != samples {
		return append(dst[:start], whole)
	}
	return dst
}

// before reports whether block b comes before position p.
func before(b ecg.Block, p ecgport.BlockPos) bool {
	return b.Lead < p.Lead || (b.Lead == p.Lead && b.Seq < p.Seq)
}
