package ecg

import (
	"errors"
	"math"
	"strconv"
	"time"
)

// Number is a measured value: an integer or a finite decimal, kept as the shortest decimal
// text that reads back to the same value (what a JSON document carries).
type Number struct{ text string }

// Int is an integer measure.
func Int(v int64) Number { return Number{strconv.FormatInt(v, 10)} }

// Float is a decimal measure; NaN and infinities are not numbers a client can read.
func Float(v float64) (Number, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Number{}, errors.New("ecg: a measure must be a finite number")
	}
	return Number{strconv.FormatFloat(v, 'f', -1, 64)}, nil
}

// ParseNumber reads a Number back from its text, as storage keeps it: a JSON number
// (strconv alone would also take "NaN", "Inf" and hexadecimal).
func ParseNumber(text string) (Number, error) {
	if !jsonNumber(text) {
		return Number{}, errors.New("ecg: not a number: " + strconv.Quote(text))
	}
	return Number{text}, nil
}

// jsonNumber reports whether s is a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(s string) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch n := digits(); {
	case n == 0, n > 1 && s[i-n] == '0':
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// String is the number's decimal text.
func (n Number) String() string { return n.text }

// IsZero reports whether n was never set.
func (n Number) IsZero() bool { return n.text == "" }

// Measure is one named result of an analysis for one lead, such as zero_crossings = 12.
type Measure struct {
	Name  string
	Value Number
}

// Result is what one analysis found in every lead of an ECG.
type Result struct {
	// Analysis names the analysis that made the result; Version is its version then.
	Analysis string
	Version  int
	// Leads holds the measures of each lead, in the ECG's lead order.
	Leads [][]Measure
}

// Insights is the analysis state of an ECG and, once it is done, its measures.
type Insights struct {
	ID     ID
	Status Status
	// Leads is set when Status is done: each lead's name and measures of every analysis, in
	// the ECG's lead order.
	Leads []LeadInsights
	// AnalysedAt is when the results were stored (or the analysis failed); zero while pending.
	AnalysedAt time.Time
	// Failure says, for people, why the analysis failed; set when Status is failed.
	Failure string
}

// LeadInsights is one lead's measures.
type LeadInsights struct {
	Name     string
	Measures []Measure
}

// Compose gathers the results of an ECG's analyses into its insights, lead by lead, measures
// in the order of results.
func Compose(e *ECG, results []Result) Insights {
	in := Insights{ID: e.ID(), Status: e.Status(), AnalysedAt: e.AnalysedAt(), Failure: e.Failure()}
	if e.Status() != StatusDone {
		return in
	}
	in.Leads = make([]LeadInsights, len(e.Leads()))
	for i, l := range e.Leads() {
		in.Leads[i].Name = l.Name
		for _, r := range results {
			if i < len(r.Leads) {
				in.Leads[i].Measures = append(in.Leads[i].Measures, r.Leads[i]...)
			}
		}
	}
	return in
}
