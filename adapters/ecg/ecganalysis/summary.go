package ecganalysis

import (
	"errors"
	"math"

	"github.com/acme/postsvc/domain/ecg/ecg"
)

// Summary measures the range and the arithmetic mean of a lead: min and max as integers, mean
// as a decimal. The sum is exact (int64 holds a million int32 samples with room to spare),
// and a float64 quotient keeps about 15 significant digits: a mean of at most 2^31 in
// magnitude is exact to well beyond the contract's three decimal places.
type Summary struct{}

func (Summary) Name() string       { return "summary" }
func (Summary) Version() int       { return 1 }
func (Summary) Measures() []string { return []string{"min", "max", "mean"} }

// Analyse measures one lead.
func (Summary) Analyse(samples []int32) ([]ecg.Measure, error) {
	if len(samples) == 0 {
		return nil, errors.New("summary: no samples")
	}
	lo, hi := int32(math.MaxInt32), int32(math.MinInt32)
	var sum int64
	for _, v := range samples {
		lo = min(lo, v)
		hi = max(hi, v)
		sum += int64(v)
	}
	mean, err := ecg.Float(float64(sum) / float64(len(samples)))
	if err != nil {
		return nil, err
	}
	return []ecg.Measure{
		{Name: "min", Value: ecg.Int(int64(lo))},
		{Name: "max", Value: ecg.Int(int64(hi))},
		{Name: "mean", Value: mean},
	}, nil
}
