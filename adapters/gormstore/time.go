package gormstore

import (
	"fmt"
	"strings"
	"time"
)

// DBTime is how every timestamp is written: UTC, cut to the microsecond that MySQL's
// DATETIME(6) keeps. Cutting in Go rather than letting MySQL round keeps both dialects
// storing the same instant, and SQLite's text timestamps comparable in queries.
func DBTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

func DBTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := DBTime(*t)
	return &v
}

// Timestamp is a scan destination for a timestamp column that a hot statement selects as the
// expression +column. MySQL's parser drops the unary plus, so its driver still decodes the
// DATETIME itself and hands over a time.Time. SQLite keeps the expression, which has no
// declared type, so the driver hands over the stored text instead of parsing it; its own
// parse first tries time.String's layout, which never matches, so each row cost a failed
// time.Parse, an error value and then the right parse (about 8% of the server's CPU on a
// list page read from SQLite). Scan parses the text the driver writes with
// _time_format=sqlite ("2006-01-02 15:04:05.999999999-07:00") directly, and anything else
// with the layouts the driver itself accepts.
type Timestamp struct{ T time.Time }

// Scan implements sql.Scanner.
func (ts *Timestamp) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		ts.T = v.UTC()
		return nil
	case string:
		return ts.parse(v)
	case []byte:
		return ts.parse(string(v))
	}
	return fmt.Errorf("gormstore: cannot scan %T into a timestamp", src)
}

func (ts *Timestamp) parse(s string) error {
	if t, ok := parseStoredTime(s); ok {
		ts.T = t
		return nil
	}
	// The layouts modernc.org/sqlite parses a DATETIME column's text with (its
	// parseTimeFormats, the date-only and minute-only ones aside: no column of ours holds
	// them), a trailing Z standing for UTC.
	text, utc := strings.CutSuffix(s, "Z")
	for _, layout := range storedTimeLayouts {
		if utc && strings.HasSuffix(layout, "-07:00") {
			continue
		}
		if t, err := time.Parse(layout, text); err == nil {
			ts.T = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("gormstore: %q is not a stored timestamp", s)
}

var storedTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

// parseStoredTime parses "YYYY-MM-DD HH:MM:SS", a 'T' allowed for the space, then an optional
// fraction of 1 to 9 digits, then an optional "Z" or "±hh:mm", in UTC. It reports false for
// anything else, including values out of range, which Timestamp then gives to time.Parse.
func parseStoredTime(s string) (time.Time, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := atoiFixed(s[0:4])
	month, ok2 := atoiFixed(s[5:7])
	day, ok3 := atoiFixed(s[8:10])
	hour, ok4 := atoiFixed(s[11:13])
	minute, ok5 := atoiFixed(s[14:16])
	sec, ok6 := atoiFixed(s[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 ||
		day > daysIn(time.Month(month), year) {
		return time.Time{}, false
	}
	rest := s[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && n <= 9 && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 {
			return time.Time{}, false
		}
		frac, _ := atoiFixed(rest[1:n])
		for i := n; i <= 9; i++ {
			frac *= 10
		}
		nsec, rest = frac, rest[n:]
	}
	offset := 0
	switch {
	case rest == "" || rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := atoiFixed(rest[1:3])
		om, okm := atoiFixed(rest[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

// atoiFixed reads s, all of it ASCII digits.
func atoiFixed(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
