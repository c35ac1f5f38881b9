package ecganalysis

import "github.com/acme/postsvc/domain/ecg/ecg"

// ZeroCrossings counts the sign changes between consecutive non-zero samples: zeros are
// skipped, so [3, 0, -2] crosses once, [3, 0, 2] never and [-1, 2, -3] twice; both directions
// count. (Libraries differ here: librosa counts 0 as positive, NeuroKit2 gives zero a sign of
// its own. This is the API contract's definition.)
type ZeroCrossings struct{}

func (ZeroCrossings) Name() string       { return "zero_crossings" }
func (ZeroCrossings) Version() int       { return 1 }
func (ZeroCrossings) Measures() []string { return []string{"zero_crossings"} }

// Analyse counts the crossings of one lead.
func (ZeroCrossings) Analyse(samples []int32) ([]ecg.Measure, error) {
	var n int64
	var prev int32 // the last non-zero sample; 0 until there is one
	for _, v := range samples {
		if v == 0 {
			continue
		}
		if prev != 0 && (v < 0) != (prev < 0) {
			n++
		}
		prev = v
	}
	return []ecg.Measure{{Name: "zero_crossings", Value: ecg.Int(n)}}, nil
}
