// Package ecg is the electrocardiogram aggregate: a recording of one owner, its leads and the
// state of its analysis. The samples themselves are not held by the aggregate (a recording
// may be 16 leads of 1,000,000 samples); they travel as packed blocks (block.go), and the
// aggregate keeps what describes them: each lead's sample count, text length and hash.
package ecg

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
)

// Limits of an ECG.
const (
	// MaxIDBytes bounds the client's identifier of a recording.
	MaxIDBytes = 64
	// MaxLeads bounds the leads of one ECG (a standard ECG has 12).
	MaxLeads = 16
	// MaxLeadNameChars bounds a lead's name, in characters.
	MaxLeadNameChars = 16
	// FutureTolerance is how far in the future a recording's date may be, for devices whose
	// clock runs ahead.
	FutureTolerance = 24 * time.Hour
)

// EarliestDate is the earliest recording date accepted: electrocardiography began in the
// 1900s, so anything earlier is a mistake (a zero date, a wrong epoch).
var EarliestDate = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

// Key identifies a stored ECG within the service: a time-ordered id made at upload, which
// orders lists newest first, positions cursors and names the ECG in background jobs.
type Key string

// ID is the client's identifier of a recording, unique per owner: 1 to 64 characters of
// A-Z a-z 0-9 . _ -. When a client sends none, the ECG's Key is its ID.
type ID string

// Status is the state of an ECG's analysis.
type Status string

// The analysis states.
const (
	StatusPending Status = "pending"
	StatusDone    Status = "done"
	StatusFailed  Status = "failed"
)

// Lead is one lead of an ECG as the aggregate keeps it: its name and a description of its
// signal.
type Lead struct {
	Name   string
	Signal Signal
}

// Draft is an ECG as a client sent it, before it is validated.
type Draft struct {
	// ID is the client's identifier; empty when it sent none.
	ID string
	// IDSent reports whether the document had an "id" member at all, so that "" is refused
	// rather than taken for "none".
	IDSent bool
	// Date is the recording's date as sent; nil when missing.
	Date *string
	// Leads are the leads in the document's order.
	Leads []LeadDraft
}

// LeadDraft is one lead as sent.
type LeadDraft struct {
	// Name is nil when the lead had no name.
	Name *string
	// Samples is the declared sample count; nil when the client left it out.
	Samples *int64
	// Signal describes the samples received; SignalSent is false when the lead had no
	// "signal" member.
	Signal     Signal
	SignalSent bool
}

// ECG is an electrocardiogram of one owner.
type ECG struct {
	key        Key
	id         ID
	owner      identity.UserID
	date       time.Time
	leads      []Lead
	content    [sha256.Size]byte
	status     Status
	failure    string
	createdAt  time.Time
	analysedAt time.Time
}

// New validates a draft and makes the ECG, pending analysis. Every problem of the draft is
// reported at once, each naming its field.
func New(key Key, owner identity.UserID, d Draft, now time.Time) (*ECG, error) {
	if key == "" || owner == "" {
		return nil, errors.New("ecg: empty key or owner")
	}
	var v domain.Validator
	id := ID(key)
	if d.IDSent {
		v.Check(ValidateID(d.ID))
		id = ID(d.ID)
	}
	var date time.Time
	if d.Date == nil {
		v.Check(domain.Invalid("date", "is required"))
	} else {
		var err error
		date, err = ParseDate(*d.Date, now)
		v.Check(err)
	}
	switch {
	case len(d.Leads) == 0:
		v.Check(domain.Invalid("leads", "must hold 1 to 16 leads"))
	case len(d.Leads) > MaxLeads:
		v.Check(TooManyLeads())
	}
	leads := make([]Lead, 0, len(d.Leads))
	keys := make([]string, 0, len(d.Leads)) // leadKey of each of leads
	at := make([]int, 0, len(d.Leads))      // the position of each of leads in the upload
	for i, l := range d.Leads {
		lead, err := newLead(i, l)
		v.Check(err)
		if err != nil {
			continue
		}
		key := leadKey(lead.Name)
		if j := slices.Index(keys, key); j >= 0 {
			v.Check(domain.Invalid(LeadField(i, "name"), "repeats the name of leads["+strconv.Itoa(at[j])+"] ("+
				strconv.Quote(leads[j].Name)+"); names are unique ignoring case"))
			continue
		}
		leads, keys, at = append(leads, lead), append(keys, key), append(at, i)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	e := &ECG{
		key: key, id: id, owner: owner, date: date, leads: leads,
		// Storage keeps microseconds; so does the ECG from the start, so that the answer to
		// the upload and a later read agree.
		status: StatusPending, createdAt: now.UTC().Truncate(time.Microsecond),
	}
	e.content = contentHash(date, leads)
	return e, nil
}

// TooManyLeads is the error of a 17th lead; decoders report it as soon as they meet one.
func TooManyLeads() error {
	return domain.Invalid("leads", "must hold 1 to 16 leads")
}

func newLead(i int, l LeadDraft) (Lead, error) {
	var v domain.Validator
	name := ""
	if l.Name == nil {
		v.Check(domain.Invalid(LeadField(i, "name"), "is required"))
	} else {
		name = *l.Name
		v.Check(ValidateLeadName(i, name))
	}
	switch {
	case !l.SignalSent:
		v.Check(domain.Invalid(LeadField(i, "signal"), "is required"))
	case l.Signal.Samples == 0:
		v.Check(domain.Invalid(LeadField(i, "signal"), "must hold 1 to 1000000 samples"))
	case l.Samples != nil && *l.Samples != int64(l.Signal.Samples):
		v.Check(domain.Invalid(LeadField(i, "samples"), "is "+strconv.FormatInt(*l.Samples, 10)+
			" but the signal holds "+strconv.Itoa(l.Signal.Samples)+" samples"))
	}
	if err := v.Err(); err != nil {
		return Lead{}, err
	}
	return Lead{Name: name, Signal: l.Signal}, nil
}

// ValidateID checks a client's identifier of a recording.
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDBytes {
		return domain.Invalid("id", "must be 1 to 64 characters")
	}
	for i := range len(id) {
		if !idByte(id[i]) {
			return domain.Invalid("id", "may hold only the characters A-Z a-z 0-9 . _ -")
		}
	}
	return nil
}

func idByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-'
}

// PlausibleID reports whether id could name an ECG, so that lookups of anything else are
// answered without a query.
func PlausibleID(id string) bool { return ValidateID(id) == nil }

// ValidateLeadName checks the name of the lead at position i: 1 to 16 characters, none of
// them a character a name may not contain (domain.InvisibleInName) nor any other format
// character, and not all of them spaces. A plain space (U+0020) may separate words ("V 1");
// other white space (tabs, no-break and zero-width spaces) may not, and neither may a space
// at either end: "I " and "I" would be two leads that look alike. The name is refused rather
// than trimmed, since a client's data is not changed behind its back. The zero width joiners
// that display names allow are refused too: a lead's name is a label (I, aVR, V1), not a word
// of a script that needs them. Names are counted and kept as sent, not normalised.
func ValidateLeadName(i int, name string) error {
	field := LeadField(i, "name")
	n := utf8.RuneCountInString(name)
	if n == 0 || n > MaxLeadNameChars {
		return domain.Invalid(field, "must be 1 to 16 characters")
	}
	if err := domain.CheckNameChars(field, name); err != nil {
		return err
	}
	for _, r := range name {
		if unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) && r != ' ' {
			return domain.Invalid(field, "must not hold control or invisible characters, nor white space other than a plain space")
		}
	}
	switch {
	case strings.Trim(name, " ") == "":
		return domain.Invalid(field, "must hold a character other than a space")
	case name[0] == ' ' || name[len(name)-1] == ' ':
		return domain.Invalid(field, "must not begin or end with a space")
	}
	return nil
}

// leadKey is the form in which two lead names that are the same ignoring case are equal: NFC
// (so "é" written precomposed and as "e" with a combining accent are one name), case folded.
func leadKey(name string) string {
	return norm.NFC.String(domain.FoldCase(norm.NFC.String(name)))
}

// ParseDate reads a recording's date: RFC 3339 (section 5.6: "T" and "Z" in either case, a
// decimal point before the fraction, offsets of 00:00 to 23:59), at most microsecond
// precision (what storage keeps, so a retried upload compares equal), not before 1900 and not
// more than a day after now. It is kept in UTC. time.Parse alone is looser than RFC 3339 (it
// takes a comma before the fraction and offsets of 24:00) and stricter (lower-case "t"/"z"),
// so the syntax is checked first. A leap second (second 60) is valid RFC 3339 that Go's time
// cannot hold: it is refused with a message that says so.
func ParseDate(s string, now time.Time) (time.Time, error) {
	norm, digits, leap, ok := rfc3339(s)
	switch {
	case !ok:
		return time.Time{}, domain.Invalid("date", "must be an RFC 3339 date and time with a time zone, such as 2024-05-01T09:30:00Z")
	case leap:
		return time.Time{}, domain.Invalid("date", "must not be a leap second (second 60): give the time one microsecond before it")
	case digits > 6:
		return time.Time{}, domain.Invalid("date", "must not be more precise than a microsecond")
	}
	t, err := time.Parse(time.RFC3339Nano, norm)
	if err != nil {
		return time.Time{}, domain.Invalid("date", "must be an RFC 3339 date and time with a time zone, such as 2024-05-01T09:30:00Z")
	}
	t = t.UTC()
	switch {
	case t.Before(EarliestDate):
		return time.Time{}, domain.Invalid("date", "must not be before 1900-01-01")
	case t.After(now.Add(FutureTolerance)):
		return time.Time{}, domain.Invalid("date", "must not be more than 24 hours in the future (device clocks may run ahead; later than that is a wrong clock)")
	}
	return t, nil
}

// rfc3339 checks the syntax of an RFC 3339 date-time (section 5.6) and returns it with "T"
// and "Z" upper-cased, the number of fraction digits, and whether the second is 60. Ranges
// of hours, minutes and offsets are checked here; the day of the month is left to time.Parse.
func rfc3339(s string) (norm string, digits int, leap, ok bool) {
	num := func(i, n, maxValue int) bool {
		if i+n > len(s) {
			return false
		}
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return false
			}
			v = v*10 + int(c-'0')
		}
		return v <= maxValue
	}
	at := func(i int, cs string) bool { return i < len(s) && strings.IndexByte(cs, s[i]) >= 0 }
	if !num(0, 4, 9999) || !at(4, "-") || !num(5, 2, 12) || !at(7, "-") || !num(8, 2, 31) || !at(10, "Tt") ||
		!num(11, 2, 23) || !at(13, ":") || !num(14, 2, 59) || !at(16, ":") || !num(17, 2, 60) {
		return "", 0, false, false
	}
	leap = s[17:19] == "60"
	i := 19
	if at(i, ".") {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
		if digits == 0 {
			return "", 0, false, false
		}
	}
	switch {
	case at(i, "Zz") && i+1 == len(s):
	case at(i, "+-") && num(i+1, 2, 23) && at(i+3, ":") && num(i+4, 2, 59) && i+6 == len(s):
	default:
		return "", 0, false, false
	}
	b := []byte(s)
	b[10] = 'T'
	if b[len(b)-1] == 'z' {
		b[len(b)-1] = 'Z'
	}
	return string(b), digits, leap, true
}

// contentHash identifies what a client sent, so that a retried upload can be told from a
// different recording under the same id: the date, and each lead's name and samples in
// order. Whether "samples" was sent, and how the JSON was spaced, do not count.
func contentHash(date time.Time, leads []Lead) [sha256.Size]byte {
	h := sha256.New()
	var b []byte
	b = append(b, "ecg-content-v1"...)
	b = binary.BigEndian.AppendUint64(b, uint64(date.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, uint64(len(leads)))
	for _, l := range leads {
		b = binary.BigEndian.AppendUint64(b, uint64(len(l.Name)))
		b = append(b, l.Name...)
		b = binary.BigEndian.AppendUint64(b, uint64(l.Signal.Samples)) //nolint:gosec // G115: a count, never negative
		b = append(b, l.Signal.Hash[:]...)
	}
	h.Write(b)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Stored is an ECG as storage keeps it, for Rehydrate.
type Stored struct {
	Key        Key
	ID         ID
	Owner      identity.UserID
	Date       time.Time
	Leads      []Lead
	Content    [sha256.Size]byte
	Status     Status
	Failure    string
	CreatedAt  time.Time
	AnalysedAt time.Time
}

// Rehydrate rebuilds an ECG read from the service's own storage without validating it again.
func Rehydrate(s Stored) *ECG {
	return &ECG{
		key: s.Key, id: s.ID, owner: s.Owner, date: s.Date.UTC(), leads: s.Leads, content: s.Content,
		status: s.Status, failure: s.Failure, createdAt: s.CreatedAt.UTC(), analysedAt: s.AnalysedAt.UTC(),
	}
}

func (e *ECG) Key() Key                    { return e.key }
func (e *ECG) ID() ID                      { return e.id }
func (e *ECG) Owner() identity.UserID      { return e.owner }
func (e *ECG) Date() time.Time             { return e.date }
func (e *ECG) Leads() []Lead               { return e.leads }
func (e *ECG) Content() [sha256.Size]byte  { return e.content }
func (e *ECG) Status() Status              { return e.status }
func (e *ECG) CreatedAt() time.Time        { return e.createdAt }
func (e *ECG) AnalysedAt() time.Time       { return e.analysedAt }
func (e *ECG) Failure() string             { return e.failure }
func (e *ECG) SameContent(other *ECG) bool { return e.content == other.content }
func (e *ECG) Stored() Stored {
	return Stored{Key: e.key, ID: e.id, Owner: e.owner, Date: e.date, Leads: e.leads, Content: e.content, Status: e.status, Failure: e.failure, CreatedAt: e.createdAt, AnalysedAt: e.analysedAt}
}
func (e *ECG) TotalSamples() (n int64) {
	for _, l := range e.leads {
		n += int64(l.Signal.Samples)
	}
	return n
}
