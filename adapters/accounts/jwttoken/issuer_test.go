package jwttoken

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/domain"
)

// fakeClock is a settable clock, so expiry can be tested without sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

const secret = "0123456789abcdef0123456789abcdef"

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func testConfig() config.Auth {
	return config.Auth{JWTSecret: secret, JWTIssuer: "postsvc", JWTAudience: "postsvc-api", AccessTokenTTL: 15 * time.Minute}
}

func newTestIssuer() (*Issuer, *fakeClock) {
	clock := &fakeClock{now: t0}
	return NewIssuer(testConfig(), clock), clock
}

// validClaims is what Issue would produce at t0, for crafting variants by hand.
func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub": "user-1",
		"sid": "session-1",
		"iss": "postsvc",
		"aud": []string{"postsvc-api"},
		"iat": t0.Unix(),
		"exp": t0.Add(15 * time.Minute).Unix(),
		"jti": "j1",
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatalf("signing test token: %v", err)
	}
	return s
}

func without(c jwt.MapClaims, name string) jwt.MapClaims {
	delete(c, name)
	return c
}

func with(c jwt.MapClaims, name string, value any) jwt.MapClaims {
	c[name] = value
	return c
}

// replacePayload swaps the payload of a signed token and keeps the header and signature.
func replacePayload(t *testing.T, token string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]any
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	edit(payload)
	raw, err = json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

func TestIssueAndVerify(t *testing.T) {
	iss, _ := newTestIssuer()
	token, lifetime, err := iss.Issue("user-1", "session-1")
	if err != nil {
		t.Fatal(err)
	}
	if lifetime != 15*time.Minute {
		t.Fatalf("lifetime = %v, want 15m", lifetime)
	}
	got, err := iss.Verify(token)
	if err != nil {
		t.Fatalf("Verify(fresh token): %v", err)
	}
	if got.UserID != "user-1" || got.SessionID != "session-1" {
		t.Fatalf("claims = %+v", got)
	}
	if !got.ExpiresAt.Equal(t0.Add(15*time.Minute)) || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("ExpiresAt = %v, want %v in UTC", got.ExpiresAt, t0.Add(15*time.Minute))
	}

	header, payload := decodeParts(t, token)
	if header["alg"] != "HS256" {
		t.Fatalf("alg = %v, want HS256", header["alg"])
	}
	for _, name := range []string{"sub", "sid", "iss", "aud", "iat", "exp", "jti"} {
		if _, ok := payload[name]; !ok {
			t.Errorf("claim %q missing from %v", name, payload)
		}
	}

	again, _, err := iss.Issue("user-1", "session-1")
	if err != nil {
		t.Fatal(err)
	}
	_, payload2 := decodeParts(t, again)
	if payload["jti"] == payload2["jti"] {
		t.Fatal("two tokens share a jti")
	}
}

func decodeParts(t *testing.T, token string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, payload
}

func TestVerifyRejects(t *testing.T) {
	iss, clock := newTestIssuer()
	good, _, err := iss.Issue("user-1", "session-1")
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte(secret)
	noneToken := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims())
	goodParts := strings.Split(good, ".")

	cases := []struct {
		name  string
		token string
		now   time.Time // zero means t0
	}{
		{name: "expired", token: good, now: t0.Add(15*time.Minute + Leeway + time.Second)},
		{name: "used long before its iat", token: good, now: t0.Add(-time.Minute)},
		{name: "tampered payload", token: replacePayload(t, good, func(p map[string]any) { p["sub"] = "user-2" })},
		{name: "tampered expiry", token: replacePayload(t, good, func(p map[string]any) { p["exp"] = t0.Add(24 * time.Hour).Unix() })},
		{name: "tampered signature", token: goodParts[0] + "." + goodParts[1] + "." + flipFirst(goodParts[2])},
		{name: "signature padding bits changed", token: goodParts[0] + "." + goodParts[1] + "." + flipPaddingBits(goodParts[2])},
		{name: "signature removed", token: goodParts[0] + "." + goodParts[1] + "."},
		{name: "alg none", token: noneToken},
		{name: "alg none header on a valid signature", token: strings.Split(noneToken, ".")[0] + "." + goodParts[1] + "." + goodParts[2]},
		{name: "HS384 with the same key", token: sign(t, jwt.SigningMethodHS384, key, validClaims())},
		{name: "HS512 with the same key", token: sign(t, jwt.SigningMethodHS512, key, validClaims())},
		{name: "RS256", token: sign(t, jwt.SigningMethodRS256, rsaKey, validClaims())},
		{name: "wrong key", token: sign(t, jwt.SigningMethodHS256, []byte("another secret of at least 32 bytes"), validClaims())},
		{name: "wrong issuer", token: sign(t, jwt.SigningMethodHS256, key, with(validClaims(), "iss", "evil"))},
		{name: "missing issuer", token: sign(t, jwt.SigningMethodHS256, key, without(validClaims(), "iss"))},
		{name: "wrong audience", token: sign(t, jwt.SigningMethodHS256, key, with(validClaims(), "aud", []string{"other-api"}))},
		{name: "missing audience", token: sign(t, jwt.SigningMethodHS256, key, without(validClaims(), "aud"))},
		{name: "missing exp", token: sign(t, jwt.SigningMethodHS256, key, without(validClaims(), "exp"))},
		{name: "exp not a number", token: sign(t, jwt.SigningMethodHS256, key, with(validClaims(), "exp", "tomorrow"))},
		{name: "iat in the future", token: sign(t, jwt.SigningMethodHS256, key, with(validClaims(), "iat", t0.Add(time.Hour).Unix()))},
		{name: "missing sid", token: sign(t, jwt.SigningMethodHS256, key, without(validClaims(), "sid"))},
		{name: "empty sid", token: sign(t, jwt.SigningMethodHS256, key, with(validClaims(), "sid", ""))},
		{name: "sid not a string", token: sign(t, jwt.SigningMethodHS256, key, with(validClaims(), "sid", 42))},
		{name: "missing sub", token: sign(t, jwt.SigningMethodHS256, key, without(validClaims(), "sub"))},
		{name: "empty string", token: ""},
		{name: "garbage", token: "not a token"},
		{name: "three garbage parts", token: "a.b.c"},
		{name: "only dots", token: ".."},
		{name: "two parts", token: goodParts[0] + "." + goodParts[1]},
		{name: "four parts", token: good + ".x"},
		{name: "header not JSON", token: base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + goodParts[1] + "." + goodParts[2]},
		{name: "payload not JSON", token: goodParts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + goodParts[2]},
		{name: "oversized", token: good + strings.Repeat("A", maxTokenBytes)},
		{name: "bearer prefix left on", token: "Bearer " + good},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := c.now
			if now.IsZero() {
				now = t0
			}
			clock.Set(now)
			got, err := iss.Verify(c.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", got)
			}
			if !errors.Is(err, domain.ErrUnauthenticated) {
				t.Fatalf("error %v does not wrap domain.ErrUnauthenticated", err)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	iss, clock := newTestIssuer()
	good, _, err := iss.Issue("user-1", "session-1")
	if err != nil {
		t.Fatal(err)
	}
	key := []byte(secret)
	cases := []struct {
		name  string
		token string
		now   time.Time
	}{
		{name: "fresh", token: good},
		{name: "one second before expiry", token: good, now: t0.Add(15*time.Minute - time.Second)},
		{name: "just expired, within leeway", token: good, now: t0.Add(15*time.Minute + Leeway - time.Second)},
		{name: "iat slightly ahead, within leeway", token: good, now: t0.Add(-Leeway + time.Second)},
		{name: "audience list containing ours", token: sign(t, jwt.SigningMethodHS256, key, with(validClaims(), "aud", []string{"other", "postsvc-api"}))},
		{name: "audience as a single string", token: sign(t, jwt.SigningMethodHS256, key, with(validClaims(), "aud", "postsvc-api"))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := c.now
			if now.IsZero() {
				now = t0
			}
			clock.Set(now)
			got, err := iss.Verify(c.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.UserID != "user-1" || got.SessionID != "session-1" {
				t.Fatalf("claims = %+v", got)
			}
		})
	}
}

// flipFirst changes the first character of a base64url segment, which changes the first
// decoded byte (unlike the last character, whose low bits may be padding).
func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// flipPaddingBits changes only the unused low bits of the last character of a 32-byte
// signature (43 characters, the last carrying 4 data bits and 2 padding bits). A lenient
// decoder would read the same signature; strict decoding must refuse it.
func flipPaddingBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last^1])
}

func TestNoSecretRefused(t *testing.T) {
	cfg := testConfig()
	cfg.JWTSecret = ""
	iss := NewIssuer(cfg, &fakeClock{now: t0})
	if _, _, err := iss.Issue("user-1", "session-1"); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("Issue without secret = %v, want ErrNoSecret", err)
	}
	// A token signed with an empty key must not verify against an issuer without a secret.
	forged := sign(t, jwt.SigningMethodHS256, []byte{}, validClaims())
	if _, err := iss.Verify(forged); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("Verify without secret = %v, want ErrUnauthenticated", err)
	}
}

func TestIssueRefusesEmptyIDs(t *testing.T) {
	iss, _ := newTestIssuer()
	if _, _, err := iss.Issue("", "session-1"); err == nil {
		t.Fatal("Issue accepted an empty user id")
	}
	if _, _, err := iss.Issue("user-1", ""); err == nil {
		t.Fatal("Issue accepted an empty session id")
	}
}

func TestDefaultTTL(t *testing.T) {
	cfg := testConfig()
	cfg.AccessTokenTTL = 0
	iss := NewIssuer(cfg, &fakeClock{now: t0})
	_, lifetime, err := iss.Issue("user-1", "session-1")
	if err != nil || lifetime != DefaultTTL {
		t.Fatalf("Issue = %v, %v; want lifetime %v", lifetime, err, DefaultTTL)
	}
}

func BenchmarkVerify(b *testing.B) {
	iss := NewIssuer(testConfig(), &fakeClock{now: t0})
	token, _, err := iss.Issue("0190b6d6-8f3c-7a41-9c1e-2f4b5a6c7d8e", "0190b6d6-9a00-7b41-8c1e-2f4b5a6c7d8f")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("first use", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			iss.verified = nil // forget it: the signature and claims are checked each time
			if _, err := iss.Verify(token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("seen before", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := iss.Verify(token); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestVerifiedTokensAreJudgedAgainOnEveryUse: a token verified once is remembered, but its time
// limits are those of the parser on every later use, and only the exact string verified hits.
func TestVerifiedTokensAreJudgedAgainOnEveryUse(t *testing.T) {
	iss, clock := newTestIssuer()
	good, _, err := iss.Issue("user-1", "session-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Verify(good); err != nil {
		t.Fatal(err)
	}
	if len(iss.verified) != 1 {
		t.Fatalf("%d tokens remembered after one verification, want 1", len(iss.verified))
	}
	for _, c := range []struct {
		name string
		now  time.Time
		ok   bool
	}{
		{"within its lifetime", t0.Add(time.Minute), true},
		{"expired, within leeway", t0.Add(15*time.Minute + Leeway - time.Second), true},
		{"expired past leeway", t0.Add(15*time.Minute + Leeway), false},
		{"issued in the future past leeway", t0.Add(-Leeway - time.Second), false},
	} {
		clock.Set(c.now)
		_, err := iss.Verify(good)
		if (err == nil) != c.ok {
			t.Errorf("%s: Verify = %v, want ok %v", c.name, err, c.ok)
		}
	}
	clock.Set(t0)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "." + flipFirst(parts[2])
	if _, err := iss.Verify(tampered); err == nil {
		t.Fatal("a tampered copy of a remembered token was accepted")
	}
}
