package apikey_test

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/domain/accounts/apikey"
)

// FuzzParseSecret: whatever a client sends after "Bearer ", the secret parser never panics,
// and accepts only the exact shape New gives secrets: the prefix, then 32 bytes in canonical
// unpadded base64url (so one key has one spelling), hashed to 64 hex digits.
func FuzzParseSecret(f *testing.F) {
	_, secret, err := apikey.New("id", "u1", "seed", nil, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		secret, secret[:len(secret)-1], secret + "A", secret + "=", strings.ToUpper(secret),
		"pat_", "pat", "", "Bearer " + secret, "pat_" + strings.Repeat("+", 43), "pat_" + strings.Repeat("é", 22),
		secret[:len(secret)-1] + "B", // non-canonical final character
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, credential string) {
		hash, err := apikey.ParseSecret(credential)
		if err != nil {
			if hash != "" {
				t.Fatalf("an error with a hash %q", hash)
			}
			return
		}
		if !apikey.LooksLikeSecret(credential) || len(credential) != apikey.SecretLength {
			t.Fatalf("accepted %q, which is not a secret's shape", credential)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(credential, apikey.SecretPrefix))
		if err != nil || apikey.SecretPrefix+base64.RawURLEncoding.EncodeToString(raw) != credential {
			t.Fatalf("accepted %q, which is not canonical base64url (%v)", credential, err)
		}
		if b, err := hex.DecodeString(hash); err != nil || len(b) != 32 || hash != apikey.HashSecret(credential) {
			t.Fatalf("hash %q of %q", hash, credential)
		}
	})
}
