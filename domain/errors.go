// Package domain is the shared kernel of every bounded context: errors that describe
// themselves (a kind and a stable code), validation errors, and the few failures every
// context can meet (unavailable, overloaded, forbidden, ...). Contexts live in the
// sub-packages (user, session, post, ...) beside the identity kernel (identity); they import
// only the standard library and these kernels.
package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind says what sort of failure an error is: all a transport needs to answer it. The HTTP
// kernel maps kinds to statuses and never names a context's error, so a new context's errors
// need no edit there.
type Kind uint8

// The kinds of failure. KindInternal is the zero value: a failure that did not describe
// itself is a bug or an unexpected condition, answered as such.
const (
	KindInternal        Kind = iota // not a described failure (500)
	KindInvalid                     // the input breaks a rule: a value out of range (422)
	KindMalformed                   // the input cannot be read at all (400)
	KindUnauthenticated             // no credential, or one not (or no longer) valid (401)
	KindForbidden                   // the caller is known but may not do this (403)
	KindNotFound                    // no such thing, or not the caller's to see (404)
	KindConflict                    // the state does not allow it: a duplicate, the last admin (409)
	KindTooLarge                    // an input over a hard size limit (413)
	KindUnsupported                 // an input of a type the service does not take (415)
	KindThrottled                   // too many attempts; retry later (429)
	KindTimeout                     // the client was too slow to send its request (408)
	KindUnavailable                 // a dependency cannot be reached; never a business answer (503)
	KindOverloaded                  // the service shed the request at once; retry shortly (503)
)

var kindNames = [...]string{
	KindInternal: "internal", KindInvalid: "invalid", KindMalformed: "malformed",
	KindUnauthenticated: "unauthenticated", KindForbidden: "forbidden", KindNotFound: "not found",
	KindConflict: "conflict", KindTooLarge: "too large", KindUnsupported: "unsupported",
	KindThrottled: "throttled", KindTimeout: "timeout", KindUnavailable: "unavailable",
	KindOverloaded: "overloaded",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is what every failure that describes itself implements. Match it with errors.As on
// this interface, the way wild-workouts matches its slug errors: the chain may hold it
// wrapped in infrastructure detail. Code is a stable snake_case string a client can switch
// on; Error is a sentence written for people, safe to show to a client.
type Error interface {
	error
	Kind() Kind
	Code() string
}

// Described is a failure with a fixed kind, code and message: the sentinels a context
// declares (post.ErrNotFound, user.ErrEmailTaken). Compare with errors.Is.
type Described struct {
	kind    Kind
	code    string
	message string
}

// NewError declares a described failure. The message is shown to clients, so it names the
// problem without echoing input.
func NewError(kind Kind, code, message string) *Described {
	return &Described{kind: kind, code: code, message: message}
}

func (e *Described) Error() string { return e.message }
func (e *Described) Kind() Kind    { return e.kind }
func (e *Described) Code() string  { return e.code }

// Failures that every context can meet.
var (
	// ErrUnauthenticated: the caller presented no credential, or one that is not (or no
	// longer) valid.
	ErrUnauthenticated = NewError(KindUnauthenticated, "unauthenticated", "A valid access token is required.")
	// ErrForbidden: the caller is known but its role does not allow the operation.
	ErrForbidden = NewError(KindForbidden, "forbidden", "Your role does not allow this operation.")
	// ErrUnavailable: a dependency (the database) cannot be reached. It is never a business
	// answer: an outage must not read as "invalid credentials" or "not found".
	ErrUnavailable = NewError(KindUnavailable, "unavailable", "The service is temporarily unavailable; retry later.")
	// ErrOverloaded: the service sheds this request because it cannot start the work soon
	// (more password checks are waiting than can run in time, or the caller already holds
	// its fair share). Unlike ErrUnavailable, every dependency is fine; retrying shortly is.
	ErrOverloaded = NewError(KindOverloaded, "overloaded", "The service is busy and shed this request; retry in a moment.")
	// ErrRequestTimeout: the client did not finish sending its request body in time.
	ErrRequestTimeout = NewError(KindTimeout, "request_timeout", "The request body was not received within the read timeout.")
)

// TooLarge declares the failure of an input over a size limit; the message says which.
func TooLarge(message string) *Described {
	return NewError(KindTooLarge, "payload_too_large", message)
}

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
		if f.Field == "" {
			parts = append(parts, f.Message)
			continue
		}
		parts = append(parts, f.Field+" "+f.Message)
	}
	if len(parts) == 0 {
		return "The request is invalid."
	}
	return strings.Join(parts, "; ") + "."
}

func (e *ValidationError) Kind() Kind   { return KindInvalid }
func (e *ValidationError) Code() string { return "validation_failed" }

// Validator accumulates field errors; Err returns nil when nothing was added.
type Validator struct{ fields []FieldError }

// Check records err when it is not nil. A ValidationError's own fields are merged; any other
// error is recorded with its message.
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
	// What names what was counted ("failed logins for this account or address", say); empty
	// says "attempts". The throttle does not know; the use case that asked it does.
	What string
}

func (e *ThrottledError) Error() string {
	secs := max(int64((e.RetryAfter+time.Second-1)/time.Second), 1)
	what := e.What
	if what == "" {
		what = "attempts"
	}
	return fmt.Sprintf("Too many %s; retry after %d seconds.", what, secs)
}

// Throttled names what err's *ThrottledError counted, leaving any other error as it is.
func Throttled(err error, what string) error {
	var te *ThrottledError
	if !errors.As(err, &te) {
		return err
	}
	named := *te
	named.What = what
	return &named
}

func (e *ThrottledError) Kind() Kind { return KindThrottled }

// RetryAfterDuration is when the caller may try again; transports turn it into Retry-After.
func (e *ThrottledError) RetryAfterDuration() time.Duration { return e.RetryAfter }
func (e *ThrottledError) Code() string                      { return "too_many_attempts" }

// KindOf returns the kind of the first described failure in err's chain, KindInternal when
// there is none. An outage or shed load anywhere in the chain wins over any other kind, so
// that infrastructure trouble is never reported as a business answer.
func KindOf(err error) Kind {
	switch {
	case errors.Is(err, ErrUnavailable):
		return KindUnavailable
	case errors.Is(err, ErrOverloaded):
		return KindOverloaded
	}
	var e Error
	if errors.As(err, &e) {
		return e.Kind()
	}
	return KindInternal
}

// IDsError is a described failure that concerns some of the ids a request named, such as
// the ids of a bulk operation that are not the caller's: a client learns every one at once.
// Transports send the ids with the problem (an "ids" member).
type IDsError struct {
	*Described
	IDs []string
}

// WithIDs attaches ids to a described failure.
func WithIDs(e *Described, ids []string) *IDsError { return &IDsError{Described: e, IDs: ids} }

// Unwrap lets errors.Is find the described failure.
func (e *IDsError) Unwrap() error { return e.Described }
