// Package ecganalysis holds the analyses of the ECG context, each one type implementing
// ecgport.Analysis, and All, the one list that registers them. Adding an analysis is a file
// here and a line in All: uploads, storage and jobs handle every analysis alike, and stored
// results of other versions are brought up to date with `server ecg reanalyse`.
package ecganalysis

import ecgport "github.com/acme/postsvc/ports/ecg"

// All is every analysis an ECG gets, in the order their measures appear in insights.
func All() []ecgport.Analysis {
	return []ecgport.Analysis{
		ZeroCrossings{},
		Summary{},
	}
}
