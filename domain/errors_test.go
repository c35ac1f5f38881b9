package domain_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/acme/postsvc/domain"
)

var errThing = domain.NewError(domain.KindNotFound, "thing_not_found", "There is no such thing.")

func TestDescribedErrorsAreFoundThroughWrapping(t *testing.T) {
	err := fmt.Errorf("repository: %w", errThing)
	var de domain.Error
	if !errors.As(err, &de) || de.Kind() != domain.KindNotFound || de.Code() != "thing_not_found" || de.Error() != "There is no such thing." {
		t.Fatalf("errors.As on domain.Error = %v", de)
	}
	if !errors.Is(err, errThing) || domain.KindOf(err) != domain.KindNotFound {
		t.Fatal("a wrapped sentinel is no longer itself")
	}
	if domain.KindOf(errors.New("plain")) != domain.KindInternal {
		t.Fatal("an error that does not describe itself must be internal")
	}
}

// TestOutagesWinOverBusinessAnswers: an error chain that holds both an outage and a business
// failure is an outage, so a database that cannot answer never reads as "not found".
func TestOutagesWinOverBusinessAnswers(t *testing.T) {
	for _, c := range []struct {
		err  error
		want domain.Kind
	}{
		{fmt.Errorf("%w: %w", errThing, domain.ErrUnavailable), domain.KindUnavailable},
		{fmt.Errorf("%w: %w", errThing, domain.ErrOverloaded), domain.KindOverloaded},
		{&domain.ThrottledError{RetryAfter: time.Second}, domain.KindThrottled},
		{domain.Invalid("email", "is required"), domain.KindInvalid},
	} {
		if got := domain.KindOf(c.err); got != c.want {
			t.Errorf("KindOf(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

func TestValidatorCollectsEveryField(t *testing.T) {
	var v domain.Validator
	v.Check(nil)
	if v.Err() != nil {
		t.Fatal("no check failed, yet an error")
	}
	v.Check(domain.Invalid("email", "is required"))
	v.Check(&domain.ValidationError{Fields: []domain.FieldError{{Field: "name", Message: "is too long"}}})
	v.Check(errors.New("something else is wrong"))
	var ve *domain.ValidationError
	if err := v.Err(); !errors.As(err, &ve) || len(ve.Fields) != 3 {
		t.Fatalf("Err = %v", err)
	}
	if got, want := v.Err().Error(), "email is required; name is too long; something else is wrong."; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	if ve.Code() != "validation_failed" || ve.Kind() != domain.KindInvalid {
		t.Fatal("a validation error must describe itself as validation_failed")
	}
}

func TestThrottledNamesWhatWasCounted(t *testing.T) {
	base := &domain.ThrottledError{RetryAfter: 1500 * time.Millisecond}
	if got := base.Error(); got != "Too many attempts; retry after 2 seconds." {
		t.Fatalf("unnamed: %q", got)
	}
	err := domain.Throttled(fmt.Errorf("admit: %w", base), "signups from this address")
	var te *domain.ThrottledError
	if !errors.As(err, &te) || te.RetryAfter != base.RetryAfter {
		t.Fatalf("named: %v, want the same wait", err)
	}
	if got := err.Error(); got != "Too many signups from this address; retry after 2 seconds." {
		t.Fatalf("named: %q", got)
	}
	if base.What != "" {
		t.Fatal("naming changed the throttle's error")
	}
	other := errors.New("boom")
	if got := domain.Throttled(other, "x"); !errors.Is(got, other) || got.Error() != "boom" {
		t.Fatal("another error was changed")
	}
}
