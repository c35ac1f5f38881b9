// Package domain holds the errors shared by every bounded context. Entities live in the
// sub-packages (user, post, session); they import only the standard library and this package.
package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors that do not belong to a single aggregate. Adapters map them to transport answers in
// one place (adapters/httpapi/problem.go); nothing else should branch on their text.
var (
	// ErrUnauthenticated: the caller presented no credential, or one that is not (or no longer) valid.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the caller is known but its role does not allow the operation.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: a dependency (the database) cannot be reached. It is never a business
	// answer: an outage must not read as "invalid credentials" or "not found".
	ErrUnavailable = errors.New("dependency unavailable")
	// ErrPayloadTooLarge: an input exceeds a hard size limit (a post over 1 MiB).
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrOverloaded: the service sheds this request because it cannot start the work soon
	// (more password checks are waiting than can run in time, or the caller already holds
	// its fair share). Unlike ErrUnavailable, every dependency is fine; retrying shortly is.
	ErrOverloaded = errors.New("overloaded")
	// ErrRequestTimeout: the client did not finish sending its request body in time.
	ErrRequestTimeout = errors.New("request body not received in time")
)

// FieldError names one invalid input field and says what is wrong with it in words a client
// developer can show to a person.
type FieldError struct {
	Field   string
	Message string
}

// ValidationError collects every invalid field of one request, so a client learns all of its
// mistakes at once instead of one per round trip.
type ValidationError struct {
	Fields []FieldError
}

// Invalid builds a ValidationError for a single field.
func Invalid(field, message string) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: message}}}
}

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, f.Field+": "+f.Message)
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

// Validator accumulates field errors; Err returns nil when nothing was added.
type Validator struct{ fields []FieldError }

// Check records err against field when err is not nil. A ValidationError's own fields are
// merged; any other error is recorded with its message.
func (v *Validator) Check(err error) {
	if err == nil {
		return
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		v.fields = append(v.fields, ve.Fields...)
		return
	}
	v.fields = append(v.fields, FieldError{Field: "", Message: err.Error()})
}

// Err returns the accumulated ValidationError, or nil.
func (v *Validator) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.fields}
}

// ThrottledError says that an operation was refused because of too many recent attempts and
// when the caller may try again.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many attempts; retry after %s", e.RetryAfter)
}
