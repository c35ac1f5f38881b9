package ecg

import "github.com/acme/postsvc/domain/ecg/ecg"

// Analysis computes measures of one lead's samples. Each analysis is one type, registered in
// one list (the composition root's); uploads, storage and jobs know analyses only through
// this interface, so adding one changes none of them.
type Analysis interface {
	// Name identifies the analysis in stored results: stable, snake_case.
	Name() string
	// Version changes whenever the analysis's results change for the same samples, so that
	// stored results of an older version can be found and computed again.
	Version() int
	// Measures names the measures Analyse returns, in its order; no two analyses of one list
	// may share a measure name.
	Measures() []string
	// Analyse measures one lead. samples holds at least one sample; Analyse must not keep it.
	Analyse(samples []int32) ([]ecg.Measure, error)
}
