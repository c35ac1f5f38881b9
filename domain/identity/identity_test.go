package identity_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/acme/postsvc/domain"
	"github.com/acme/postsvc/domain/identity"
)

func TestAsCaller(t *testing.T) {
	other := errors.New("disk full")
	for _, c := range []struct {
		name     string
		err, out error
	}{
		{"nil", nil, nil},
		{"unknown user", identity.ErrUnknownUser, domain.ErrUnauthenticated},
		{"unknown user, wrapped", fmt.Errorf("store: owner u1: %w", identity.ErrUnknownUser), domain.ErrUnauthenticated},
		{"another not-found", domain.NewError(domain.KindNotFound, "post_not_found", "no post"), nil},
		{"anything else", other, other},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := identity.AsCaller(c.err)
			want := c.out
			if want == nil && c.err != nil {
				want = c.err
			}
			if !errors.Is(got, want) || (want == nil) != (got == nil) {
				t.Fatalf("AsCaller(%v) = %v, want %v", c.err, got, want)
			}
		})
	}
}
