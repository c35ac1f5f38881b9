package main

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestClaimsOfReadsTheUserAndSession(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u-1","sid":"s-1","exp":1}`))
	c, err := claimsOf("h." + payload + ".sig")
	if err != nil || c.Sub != "u-1" || c.SID != "s-1" {
		t.Fatalf("claimsOf = %+v, %v", c, err)
	}
	if sid, err := sessionIDOf("h." + payload + ".sig"); err != nil || sid != "s-1" {
		t.Fatalf("sessionIDOf = %q, %v", sid, err)
	}
	noSID := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u-1"}`))
	for _, bad := range []string{"", "a.b", "h.%%%.sig", "h." + base64.RawURLEncoding.EncodeToString([]byte("[")) + ".sig"} {
		if _, err := claimsOf(bad); err == nil {
			t.Errorf("claimsOf(%q) accepted it", bad)
		}
	}
	if _, err := sessionIDOf("h." + noSID + ".sig"); err == nil {
		t.Error("sessionIDOf accepted a token without sid")
	}
}

// The list ceiling refuses a request it cannot turn into the list's statements before it
// touches the database (nil here).
func TestCeilingListRefusesWhatItCannotRead(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u-1","sid":"s-1"}`))
	for _, c := range []struct{ url, token string }{
		{"/api/v1/posts?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("x")), "not-a-jwt"},
		{"/api/v1/posts?cursor=%25%25", "h." + payload + ".sig"},
		{"/api/v1/posts", "h." + payload + ".sig"},
	} {
		err := ceilingList(httptest.NewRequest("GET", c.url, nil), nil, mysqlStatements, c.token)
		if err == nil || strings.Contains(err.Error(), "%!") {
			t.Errorf("%s with %q: err %v, want a refusal", c.url, c.token, err)
		}
	}
}
