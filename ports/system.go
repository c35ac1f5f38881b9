package ports

import "time"

// Clock tells the time; tests use a fixed or stepped clock.
type Clock interface {
	Now() time.Time
}

// IDGenerator makes opaque, time-ordered identifiers (sorting them sorts by creation time).
type IDGenerator interface {
	NewID() string
}
