// Package system adapts the process's own resources, the wall clock and the identifier
// source, to the ports the application needs, so that use cases never call time.Now or a
// UUID library directly and tests can replace both.
package system

import (
	"time"

	"github.com/acme/postsvc/ports"
)

// Clock is the real wall clock. It reports UTC so that every timestamp the service stores or
// prints is in the zone the API contract promises, whatever the host's local zone is.
type Clock struct{}

var _ ports.Clock = Clock{}

// NewClock returns the real clock.
func NewClock() Clock { return Clock{} }

// Now returns the current time in UTC, truncated to microseconds: the precision both
// databases keep (DATETIME(6)), so a timestamp the API returns on creation is the same one it
// returns when the row is read back. UTC also drops the monotonic reading, which is fine here:
// callers use the result as a timestamp, not to measure short intervals.
func (Clock) Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
