package ecganalysis_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/acme/postsvc/adapters/ecg/ecganalysis"
	ecgapp "github.com/acme/postsvc/application/ecg"
	"github.com/acme/postsvc/domain/ecg/ecg"
)

// measures runs a over samples and returns its measures by name.
func measures(t *testing.T, a analysis, samples []int32) map[string]string {
	t.Helper()
	ms, err := a.Analyse(samples)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range ms {
		out[m.Name] = m.Value.String()
	}
	return out
}

type analysis interface {
	Analyse([]int32) ([]ecg.Measure, error)
}

// TestZeroCrossings checks the contract's definition, its own examples first.
func TestZeroCrossings(t *testing.T) {
	for _, tc := range []struct {
		samples []int32
		want    string
	}{
		{[]int32{3, 0, -2}, "1"},
		{[]int32{3, 0, 2}, "0"},
		{[]int32{-1, 2, -3}, "2"},
		{[]int32{0, 0, 0}, "0"},
		{[]int32{0, -5, 0, 0, 7, 0}, "1"},
		{[]int32{-5}, "0"},
		{[]int32{1, 2, 3, -1, -2, 0, 0, 4}, "2"},
		{[]int32{math.MinInt32, math.MaxInt32, math.MinInt32}, "2"},
	} {
		got := measures(t, ecganalysis.ZeroCrossings{}, tc.samples)
		if got["zero_crossings"] != tc.want {
			t.Errorf("%v: zero_crossings %s, want %s", tc.samples, got["zero_crossings"], tc.want)
		}
	}
}

// TestSummary checks min, max and a mean exact to three decimals, at the int32 extremes too.
func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		samples      []int32
		lo, hi, mean string
	}{
		{[]int32{1, 2, 4}, "1", "4", "2.3333333333333335"},
		{[]int32{-7}, "-7", "-7", "-7"},
		{[]int32{math.MaxInt32, math.MaxInt32, math.MaxInt32 - 1}, "2147483646", "2147483647", "2147483646.6666667"},
		{[]int32{math.MinInt32, math.MaxInt32}, "-2147483648", "2147483647", "-0.5"},
	} {
		got := measures(t, ecganalysis.Summary{}, tc.samples)
		if got["min"] != tc.lo || got["max"] != tc.hi || got["mean"] != tc.mean {
			t.Errorf("%v: got %v, want min %s max %s mean %s", tc.samples, got, tc.lo, tc.hi, tc.mean)
		}
	}
	if _, err := (ecganalysis.Summary{}).Analyse(nil); err == nil {
		t.Error("no samples: want an error")
	}
}

// TestMeanExactToThreeDecimals compares the mean of a million extreme samples with the exact
// quotient.
func TestMeanExactToThreeDecimals(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	samples := make([]int32, ecg.MaxSamples)
	var sum int64
	for i := range samples {
		samples[i] = int32(r.Uint32())
		sum += int64(samples[i])
	}
	got := measures(t, ecganalysis.Summary{}, samples)["mean"]
	want := float64(sum) / float64(len(samples))
	var parsed float64
	if _, err := fmt.Sscan(got, &parsed); err != nil || math.Abs(parsed-want) > 0.0005 {
		t.Fatalf("mean %s, want %.6f", got, want)
	}
}

// TestAllIsAValidRegistry keeps the registered list usable: unique names and measures.
func TestAllIsAValidRegistry(t *testing.T) {
	if err := ecgapp.Analyses(ecganalysis.All()).Validate(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkZeroCrossings(b *testing.B) { benchAnalysis(b, ecganalysis.ZeroCrossings{}) }
func BenchmarkSummary(b *testing.B)       { benchAnalysis(b, ecganalysis.Summary{}) }

// benchAnalysis runs an analysis over the 12 leads of 5000 samples of a standard ECG.
func benchAnalysis(b *testing.B, a analysis) {
	r := rand.New(rand.NewPCG(1, 2))
	leads := make([][]int32, 12)
	for i := range leads {
		leads[i] = make([]int32, 5000)
		for j := range leads[i] {
			leads[i][j] = int32(1000*math.Sin(float64(j)/40)) + int32(r.IntN(41)) - 20
		}
	}
	b.SetBytes(12 * 5000 * 4)
	for b.Loop() {
		for _, l := range leads {
			if _, err := a.Analyse(l); err != nil {
				b.Fatal(err)
			}
		}
	}
}
