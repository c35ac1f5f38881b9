package post_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/posts/post"
)

func TestValidateText(t *testing.T) {
	fourByte := strings.Repeat("😀", post.MaxTextBytes/4) // exactly 1 MiB
	const (
		ok = iota
		tooLarge
		invalid // a *domain.ValidationError on the text field
	)
	cases := []struct {
		name string
		text string
		want int
	}{
		{"one byte", "a", ok},
		{"exactly 1 MiB ascii", strings.Repeat("a", post.MaxTextBytes), ok},
		{"exactly 1 MiB of 4-byte characters", fourByte, ok},
		{"1 MiB + 1 byte", strings.Repeat("a", post.MaxTextBytes+1), tooLarge},
		{"1 MiB of 4-byte characters + 1 byte", fourByte + "a", tooLarge},
		{"empty", "", invalid},
		{"invalid utf8", "ok\xffno", invalid},
	}
	for _, c := range cases {
		err := post.ValidateText(c.text)
		var ve *domain.ValidationError
		switch c.want {
		case ok:
			if err != nil {
				t.Errorf("%s: unexpected error %v", c.name, err)
			}
		case tooLarge:
			if !errors.Is(err, post.ErrTextTooLarge) {
				t.Errorf("%s: got %v, want ErrPayloadTooLarge", c.name, err)
			}
		case invalid:
			if !errors.As(err, &ve) || ve.Fields[0].Field != "text" {
				t.Errorf("%s: got %v, want a validation error on text", c.name, err)
			}
		}
	}
}

func TestNewKeepsTextByteForByte(t *testing.T) {
	text := "  spaces, tabs\t and \r\n newlines stay  "
	p, err := post.New("p1", "u1", text, time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Text() != text {
		t.Errorf("text changed: %q", p.Text())
	}
	if p.CreatedAt().Location() != time.UTC {
		t.Errorf("created_at must be UTC, got %v", p.CreatedAt().Location())
	}
	if _, err := post.New("", "u1", "x", time.Now()); err == nil {
		t.Error("empty id accepted")
	}
}
