package httpapi

import "testing"

func TestAcceptsGzip(t *testing.T) {
	cases := map[string]bool{
		"":                     false,
		"gzip":                 true,
		"GZIP":                 true,
		"deflate, gzip;q=0.5":  true,
		"br, gzip ; q=0":       false,
		"*":                    true,
		"*;q=0":                false,
		"gzip;q=0, *":          false,
		"identity":             false,
		"x-gzip":               false,
		"deflate, br, zstd":    false,
		"gzip;q=1.0, identity": true,
	}
	for header, want := range cases {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
