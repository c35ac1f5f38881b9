package gormstore

import "time"

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
