package ecghttp

import (
	"math"
	"math/rand/v2"
	"strconv"
)

// Upload bodies for tests and benchmarks of the package.

// standardLeads are the names of a 12-lead ECG, in the usual order.
var standardLeads = []string{"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"}

// ecgLeadName is the name of the lead at position i: the 12 standard names, then X13, X14...
func ecgLeadName(i int) string {
	if i < len(standardLeads) {
		return standardLeads[i]
	}
	return "X" + strconv.Itoa(i+1)
}

// ecgLeadSamples is a realistic signal for the lead at position lead: n samples at 500 Hz of
// a heart beating at 72 per minute (P wave, QRS complex, T wave), with a DC offset, baseline
// wander and noise, in microvolts within ±2000. It is the same for the same arguments.
func ecgLeadSamples(lead, n int) []int32 {
	rng := rand.New(rand.NewPCG(uint64(lead)+1, 0x9e3779b97f4a7c15))
	gain := 0.6 + 0.1*float64(lead%7)
	if lead%4 == 3 {
		gain = -gain // aVR and its like are mostly negative
	}
	offset := float64(100*(lead%11) - 500) // the electrode's DC offset
	const rate = 500.0
	const beat = 60.0 / 72 // seconds
	wave := func(t, centre, width, height float64) float64 {
		d := (t - centre) / width
		return height * math.Exp(-d*d/2)
	}
	out := make([]int32, n)
	for i := range out {
		t := float64(i) / rate
		phase := math.Mod(t, beat)
		v := wave(phase, 0.16, 0.025, 150) + // P
			wave(phase, 0.30, 0.008, -120) + // Q
			wave(phase, 0.32, 0.010, 1300) + // R
			wave(phase, 0.345, 0.010, -350) + // S
			wave(phase, 0.55, 0.045, 320) // T
		v = gain*v + offset + 150*math.Sin(2*math.Pi*0.3*t+float64(lead)) + rng.NormFloat64()*15
		out[i] = int32(max(-2000, min(2000, math.Round(v))))
	}
	return out
}

// ecgBody is an upload of leads leads of samples samples each (ecgLeadSamples), compact as
// clients send it: {"id","date","leads":[{"name","samples","signal"}]}. A 12-lead,
// 5,000-sample body is about 262 KB.
func ecgBody(leads, samples int) []byte {
	b := make([]byte, 0, 64+leads*(48+samples*5))
	b = append(b, `{"id":"ecg-`...)
	b = strconv.AppendInt(b, int64(leads), 10)
	b = append(b, 'x')
	b = strconv.AppendInt(b, int64(samples), 10)
	b = append(b, `","date":"2024-05-01T09:30:00.125Z","leads":[`...)
	for l := range leads {
		if l > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = strconv.AppendQuote(b, ecgLeadName(l))
		b = append(b, `,"samples":`...)
		b = strconv.AppendInt(b, int64(samples), 10)
		b = append(b, `,"signal":[`...)
		for i, v := range ecgLeadSamples(l, samples) {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(v), 10)
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}
