package apikey_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/accounts/apikey"
)

func days(n int) *int { return &n }

func TestNewMakesASecretShownOnceAndKeepsOnlyItsHash(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("X", 3600))
	k, secret, err := apikey.New("k1", "u1", "  deploy bot  ", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "pat_") || len(secret) != apikey.SecretLength || apikey.SecretLength != 47 {
		t.Fatalf("secret %q: want pat_ and 43 characters", secret)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(secret[4:])
	if err != nil || len(raw) != 32 {
		t.Fatalf("secret body is not 32 bytes of unpadded base64url: %v", err)
	}
	if k.Name() != "deploy bot" || k.Prefix() != secret[:12] || k.UserID() != "u1" || k.ID() != "k1" {
		t.Fatalf("key = %+v", k)
	}
	if k.Hash() == secret || strings.Contains(k.Hash(), secret[4:]) || k.Hash() != apikey.HashSecret(secret) || len(k.Hash()) != 64 {
		t.Fatalf("hash %q is not the secret's SHA-256", k.Hash())
	}
	if k.ExpiresAt() != nil || k.LastUsedAt() != nil || !k.CreatedAt().Equal(now) || k.CreatedAt().Location() != time.UTC {
		t.Fatalf("times: created %v, expires %v, last used %v", k.CreatedAt(), k.ExpiresAt(), k.LastUsedAt())
	}
	if !k.Active(now.Add(100 * 365 * 24 * time.Hour)) {
		t.Fatal("a key without expiry must stay active")
	}
	// Two keys never share a secret.
	_, other, err := apikey.New("k2", "u1", "x", nil, now)
	if err != nil || other == secret || other[:12] == secret[:12] {
		t.Fatalf("second secret %q, first %q: %v", other, secret, err)
	}
}

func TestExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range []int{1, 30, 365} {
		k, _, err := apikey.New("k", "u", "n", days(n), now)
		if err != nil {
			t.Fatalf("%d days: %v", n, err)
		}
		want := now.Add(time.Duration(n) * 24 * time.Hour)
		if k.ExpiresAt() == nil || !k.ExpiresAt().Equal(want) {
			t.Fatalf("%d days: expires %v, want %v", n, k.ExpiresAt(), want)
		}
		if !k.Active(want.Add(-time.Microsecond)) || k.Active(want) || k.Active(want.Add(time.Second)) {
			t.Fatalf("%d days: active just before expiry only", n)
		}
	}
}

func TestNewRefusesInvalidFields(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name   string
		days   *int
		fields []string
	}{
		{"", nil, []string{"name"}},
		{"   \t ", nil, []string{"name"}},
		{strings.Repeat("é", 101), nil, []string{"name"}},
		{"a\x00b", nil, []string{"name"}},
		{"ok", days(0), []string{"expires_in_days"}},
		{"ok", days(-1), []string{"expires_in_days"}},
		{"ok", days(366), []string{"expires_in_days"}},
		{"", days(400), []string{"name", "expires_in_days"}},
	}
	for _, c := range cases {
		_, secret, err := apikey.New("k", "u", c.name, c.days, now)
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || secret != "" {
			t.Errorf("New(%q, %v) = %v, want a validation error and no secret", c.name, c.days, err)
			continue
		}
		var got []string
		for _, f := range ve.Fields {
			got = append(got, f.Field)
		}
		if strings.Join(got, ",") != strings.Join(c.fields, ",") {
			t.Errorf("New(%q, %v) fields %v, want %v", c.name, c.days, got, c.fields)
		}
	}
	if _, err := apikey.ParseName(strings.Repeat("é", 100)); err != nil {
		t.Errorf("100 characters refused: %v", err)
	}
	// A key's name is read in a list beside the others: invisible characters would make two
	// names look alike, and a zero width space alone would be a name that shows as nothing.
	for _, raw := range []string{"deploy\u200b", "\u200b", "\ufeffdeploy", "deploy \u202etpircs", "\u3164"} {
		_, err := apikey.ParseName(raw)
		var v *domain.ValidationError
		if !errors.As(err, &v) || len(v.Fields) != 1 || v.Fields[0].Field != "name" ||
			!strings.HasPrefix(v.Fields[0].Message, "must not contain invisible or control characters (U+") {
			t.Errorf("ParseName(%+q) = %v; want the name refused for its invisible character", raw, err)
		}
	}
	if _, _, err := apikey.New("", "u", "n", nil, now); err == nil {
		t.Error("empty id accepted")
	}
	if _, _, err := apikey.New("k", "", "n", nil, now); err == nil {
		t.Error("empty user accepted")
	}
}

func TestParseSecret(t *testing.T) {
	_, secret, err := apikey.New("k", "u", "n", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if h, err := apikey.ParseSecret(secret); err != nil || h != apikey.HashSecret(secret) {
		t.Fatalf("ParseSecret(own secret) = %q, %v", h, err)
	}
	if !apikey.LooksLikeSecret(secret) || apikey.LooksLikeSecret("eyJ.a.b") {
		t.Fatal("LooksLikeSecret")
	}
	body := secret[4:]
	for name, bad := range map[string]string{
		"empty":           "",
		"prefix only":     "pat_",
		"other prefix":    "pak_" + body,
		"upper prefix":    "PAT_" + body,
		"short":           secret[:46],
		"long":            secret + "A",
		"padding":         "pat_" + body[:42] + "=",
		"standard base64": "pat_" + strings.Repeat("+", 43),
		"not base64":      "pat_" + strings.Repeat("!", 43),
		"non-canonical":   "pat_" + body[:42] + "B", // 43rd character carries bits that must be 0
	} {
		if name == "non-canonical" && strings.HasSuffix(body, "B") {
			continue
		}
		if _, err := apikey.ParseSecret(bad); !errors.Is(err, apikey.ErrMalformedSecret) {
			t.Errorf("%s: ParseSecret(%q) = %v, want ErrMalformedSecret", name, bad, err)
		}
	}
}

func TestRehydrateKeepsEveryField(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 7200))
	exp, used := created.Add(time.Hour), created.Add(time.Minute)
	k := apikey.Rehydrate("k", "u", "n", "pat_abcdefgh", "hash", created, &exp, &used)
	if k.ID() != "k" || k.UserID() != "u" || k.Name() != "n" || k.Prefix() != "pat_abcdefgh" || k.Hash() != "hash" ||
		!k.CreatedAt().Equal(created) || !k.ExpiresAt().Equal(exp) || !k.LastUsedAt().Equal(used) ||
		k.CreatedAt().Location() != time.UTC || k.ExpiresAt().Location() != time.UTC {
		t.Fatalf("rehydrated %+v", k)
	}
}
