package ecg

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/acme/postsvc/domain/ecg/ecg"
)

// Limits every Repository keeps to, so that SQLite (which would store longer text) and MySQL
// (which refuses it) store the same values, and the in-memory fake behaves as they do.
const (
	// MaxFailureBytes bounds a failed analysis's reason; CleanFailure cuts longer ones.
	MaxFailureBytes = 1000
	// MaxFingerprintBytes bounds Fingerprint's text for the stored results.
	MaxFingerprintBytes = 1000
	// MaxAnalysisNameBytes bounds an analysis's name.
	MaxAnalysisNameBytes = 64
)

// ErrInvalidResults is what SaveResults wraps for results it could not store exactly: a
// programming error of the analyses, not a client's.
var ErrInvalidResults = errors.New("ecg: results that cannot be stored")

// Fingerprint names a set of analysis versions: each "name@version", sorted, joined by ",".
// A repository stores the fingerprint of an ECG's results and compares it with that of the
// current analyses (Outdated), so it depends on neither order nor measures.
func Fingerprint(versions []AnalysisVersion) string {
	parts := make([]string, len(versions))
	for i, v := range versions {
		parts[i] = v.Name + "@" + strconv.Itoa(v.Version)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// VersionsOf names the analysis versions that made results.
func VersionsOf(results []ecg.Result) []AnalysisVersion {
	out := make([]AnalysisVersion, len(results))
	for i, r := range results {
		out[i] = AnalysisVersion{Name: r.Analysis, Version: r.Version}
	}
	return out
}

// CheckResults refuses results a repository could not keep exactly: two of one analysis,
// names that are empty, too long or not UTF-8 (JSON would replace their bytes), versions
// beyond 32 bits, unset numbers, and a fingerprint over MaxFingerprintBytes. The error wraps
// ErrInvalidResults.
func CheckResults(results []ecg.Result) error {
	seen := make(map[string]bool, len(results))
	for _, r := range results {
		switch {
		case r.Analysis == "" || len(r.Analysis) > MaxAnalysisNameBytes || !utf8.ValidString(r.Analysis):
			return fmt.Errorf("%w: analysis name %q: want 1 to %d bytes of UTF-8", ErrInvalidResults, r.Analysis, MaxAnalysisNameBytes)
		case r.Version < math.MinInt32 || r.Version > math.MaxInt32:
			return fmt.Errorf("%w: analysis %q: version %d out of range", ErrInvalidResults, r.Analysis, r.Version)
		case seen[r.Analysis]:
			return fmt.Errorf("%w: two results of analysis %q", ErrInvalidResults, r.Analysis)
		}
		seen[r.Analysis] = true
		for i, ms := range r.Leads {
			for _, m := range ms {
				if m.Value.IsZero() || !utf8.ValidString(m.Name) {
					return fmt.Errorf("%w: analysis %q, lead %d: measure %q is unset or not UTF-8", ErrInvalidResults, r.Analysis, i, m.Name)
				}
			}
		}
	}
	if fp := Fingerprint(VersionsOf(results)); len(fp) > MaxFingerprintBytes {
		return fmt.Errorf("%w: the results' fingerprint takes %d bytes, at most %d", ErrInvalidResults, len(fp), MaxFingerprintBytes)
	}
	return nil
}

// CleanFailure makes a failure reason storable: valid UTF-8 (invalid bytes become U+FFFD,
// which MySQL would otherwise refuse), cut to at most MaxFailureBytes on a character boundary.
func CleanFailure(reason string) string {
	reason = strings.ToValidUTF8(reason, "\uFFFD")
	if len(reason) <= MaxFailureBytes {
		return reason
	}
	cut := MaxFailureBytes
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}
