package ecghttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/ecg/ecg"
	"github.com/acme/postsvc/domain/identity"
)

// summaryJSON is an ECG without its signals: the answer to an upload and an item of a list.
type summaryJSON struct {
	ID        string     `json:"id"`
	Date      string     `json:"date"`
	Leads     []leadJSON `json:"leads"`
	Status    string     `json:"status"`
	CreatedAt string     `json:"created_at"`
}

type leadJSON struct {
	Name    string `json:"name"`
	Samples int    `json:"samples"`
}

type pageJSON struct {
	ECGs       []summaryJSON `json:"ecgs"`
	NextCursor *string       `json:"next_cursor"`
}

func summaryOf(e *ecg.ECG) summaryJSON {
	leads := make([]leadJSON, len(e.Leads()))
	for i, l := range e.Leads() {
		leads[i] = leadJSON{Name: l.Name, Samples: l.Signal.Samples}
	}
	return summaryJSON{
		ID: string(e.ID()), Date: httpapi.Timestamp(e.Date()), Leads: leads,
		Status: string(e.Status()), CreatedAt: httpapi.Timestamp(e.CreatedAt()),
	}
}

// insightsJSON is the answer of GET /ecgs/{id}/insights.
type insightsJSON struct {
	ECGID      string             `json:"ecg_id"`
	Status     string             `json:"status"`
	Leads      []leadInsightsJSON `json:"leads,omitempty"`
	AnalysedAt *string            `json:"analysed_at"`
	Error      string             `json:"error,omitempty"`
}

// leadInsightsJSON is one lead's measures: its name, then each measure as a member, in the
// order the analyses are registered.
type leadInsightsJSON ecg.LeadInsights

// MarshalJSON writes the lead as {"name": ..., "<measure>": <number>, ...}. The measures are
// named by the analyses, so they cannot be struct fields; their values are numbers already in
// JSON's decimal form.
func (l leadInsightsJSON) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	name, err := json.Marshal(l.Name)
	if err != nil {
		return nil, err
	}
	b.WriteString(`{"name":`)
	b.Write(name)
	for _, m := range l.Measures {
		key, err := json.Marshal(m.Name)
		if err != nil {
			return nil, err
		}
		b.WriteByte(',')
		b.Write(key)
		b.WriteByte(':')
		b.WriteString(m.Value.String())
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func insightsOf(in ecg.Insights) insightsJSON {
	out := insightsJSON{ECGID: string(in.ID), Status: string(in.Status)}
	if in.Status == ecg.StatusDone {
		out.Leads = make([]leadInsightsJSON, len(in.Leads))
		for i, l := range in.Leads {
			out.Leads[i] = leadInsightsJSON(l)
		}
	}
	if !in.AnalysedAt.IsZero() {
		at := httpapi.Timestamp(in.AnalysedAt)
		out.AnalysedAt = &at
	}
	if in.Status == ecg.StatusFailed {
		out.Error = in.Failure
	}
	return out
}

// textChunk is how many samples are written as text at a time.
const textChunk = 4096

// sampleBuffers holds the samples of one block at a time while they are written out.
var sampleBuffers = sync.Pool{New: func() any {
	b := make([]int32, 0, ecg.MaxBlockSamples)
	return &b
}}

// textBuffers holds the decimal text of textChunk samples.
var textBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 12*textChunk)
	return &b
}}

// writeECG answers GET /ecgs/{id}: the ECG with its signals, streamed block by block, with an
// exact Content-Length computed from the text length recorded for each lead at upload. A HEAD
// request gets the headers without the signals being read.
//
// The signals are read whole before the headers are sent (Service.Signals): an ECG deleted
// after its row was read, before or while its signals are, is answered 404, never a 200 whose
// body stops short of its Content-Length. Only a failure to write to the client, or storage
// failing under a spool file, can cut the body short once it has started.
func (m *Module) writeECG(c *gin.Context, p identity.Principal, e *ecg.ECG) {
	head := headOf(e)
	leads := make([]string, len(e.Leads()))
	size := int64(len(head)) + int64(len("]}\n"))
	for i, l := range e.Leads() {
		leads[i] = leadHead(i, l)
		size += int64(len(leads[i])) + l.Signal.TextBytes + int64(len("]}"))
	}
	if c.Request.Method == http.MethodHead {
		httpapi.StartJSONStream(c, http.StatusOK, size).Finish()
		return
	}
	signals, err := m.svc.Signals(c.Request.Context(), p, e)
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	defer func() { _ = signals.Close() }()
	js := httpapi.StartJSONStream(c, http.StatusOK, size)
	defer js.Finish()
	samples, _ := sampleBuffers.Get().(*[]int32) // the pools' New make nothing else
	defer sampleBuffers.Put(samples)
	text, _ := textBuffers.Get().(*[]byte)
	defer textBuffers.Put(text)
	js.Raw(head)
	lead := -1
	err = signals.Each(func(b ecg.Block) error {
		if js.Failed() {
			return errClientGone
		}
		first := b.Lead != lead
		if first {
			if lead >= 0 {
				js.Raw("]}")
			}
			lead = b.Lead
			if lead >= len(leads) {
				return ecg.ErrCorruptBlock
			}
			js.Raw(leads[lead])
		}
		var err error
		if *samples, err = ecg.AppendUnpacked((*samples)[:0], b.Data); err != nil {
			return err
		}
		for i := 0; i < len(*samples); i += textChunk {
			chunk := (*samples)[i:min(i+textChunk, len(*samples))]
			*text = ecg.AppendSignalText((*text)[:0], chunk, first && i == 0)
			js.Bytes(*text)
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errClientGone) {
			// The headers are gone; all that can be done is to cut the response short,
			// which the client sees as a body shorter than its Content-Length.
			_ = c.Error(err)
		}
		c.Abort()
		return
	}
	if lead >= 0 {
		js.Raw("]}")
	}
	js.Raw("]}\n")
}

// errClientGone ends the writing of signals to a client that stopped reading.
var errClientGone = errors.New("ecghttp: the client is gone")

// headOf is the document up to its first lead: {"id":...,"date":...,"status":...,
// "created_at":...,"leads":[
func headOf(e *ecg.ECG) string {
	var b bytes.Buffer
	b.WriteString(`{"id":`)
	writeString(&b, string(e.ID()))
	b.WriteString(`,"date":`)
	writeString(&b, httpapi.Timestamp(e.Date()))
	b.WriteString(`,"status":`)
	writeString(&b, string(e.Status()))
	b.WriteString(`,"created_at":`)
	writeString(&b, httpapi.Timestamp(e.CreatedAt()))
	b.WriteString(`,"leads":[`)
	return b.String()
}

// leadHead is a lead up to its samples: {"name":...,"samples":N,"signal":[ with the comma
// that separates it from the lead before.
func leadHead(i int, l ecg.Lead) string {
	var b bytes.Buffer
	if i > 0 {
		b.WriteByte(',')
	}
	b.WriteString(`{"name":`)
	writeString(&b, l.Name)
	b.WriteString(`,"samples":`)
	b.WriteString(strconv.Itoa(l.Signal.Samples))
	b.WriteString(`,"signal":[`)
	return b.String()
}

// writeString writes s as encoding/json does with HTML escaping off.
func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // the newline Encode adds
}
