// Package storage is the behavioural specification of ports.ObjectStore, run against every
// implementation: the filesystem store and the S3 store on a real S3-protocol server
// (versitygw). It sees only the port.
package storage

import (
	"testing"

	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/contract"
)

// Backend is one fresh, empty store and what the suite may ask about it beyond the port.
type Backend struct {
	Store ports.ObjectStore
	// Leftovers counts what failed uploads left that is not an object: the filesystem's
	// temporaries, S3's unfinished multipart uploads. A failed Put must leave none.
	Leftovers func(t *testing.T) int
	// Outside lists the files that appeared outside the store's own folder (nil where the
	// store has no folder): a forged key must never create one.
	Outside func(t *testing.T) []string
}

// Tests returns the suite's groups.
func Tests() []contract.Group[Backend] {
	return []contract.Group[Backend]{
		{Name: "ReadWrite", Tests: readWriteTests},
		{Name: "AllOrNothing", Tests: allOrNothingTests},
		{Name: "Listing", Tests: listTests},
		{Name: "Keys", Tests: keyTests},
		{Name: "Concurrency", Tests: concurrencyTests},
	}
}
