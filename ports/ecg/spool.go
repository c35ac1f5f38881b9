package ecg

import "github.com/acme/postsvc/domain/ecg/ecg"

// Spools hold the signals of uploads while they are received: the whole body has to be read
// and checked before anything is stored, and an upload may be 64 MiB, so an implementation
// keeps a bounded amount in memory, all uploads together, and the rest elsewhere (a file).
// Service.Signals spools a large stored ECG the same way while it is read back.
type Spools interface {
	// New starts the spool of one upload. It fails with domain.ErrOverloaded when there is no
	// room for another.
	New() (Spool, error)
	// NewRead starts the spool of a stored ECG read back (Service.Signals). It is held until
	// the answer is sent, which a slow client may make long, so such spools together take only
	// a part of the budgets and leave the rest to uploads; past it Put is
	// domain.ErrOverloaded.
	NewRead() (Spool, error)
}

// Spool receives an upload's blocks and hands them back in order. Put fails (wrapping
// domain.ErrUnavailable) when the blocks cannot be kept. Close releases what it holds; it
// must be called once the upload is stored or refused.
//
// Bytes is the packed data of the blocks put so far (the sum of their Data's lengths): what
// storing them takes, and what the owner's quota counts.
type Spool interface {
	ecg.BlockSink
	ecg.Blocks
	Bytes() int64
	Close() error
}

// Signals are the packed samples of one stored ECG, read whole (Service.Signals), handed back
// lead by lead and each lead's blocks in order; the Data of a block is valid only during the
// call that gets it. Close releases what they hold.
type Signals interface {
	ecg.Blocks
	Close() error
}

// IDWatcher is what a Spool may also be: the decoder tells it the upload's id as soon as it has
// read it, and an error ends the decoding there, before the rest of the body is read. The
// spool the service hands an owner already at the quota is one: it refuses an id that is not
// a retry of a stored ECG.
type IDWatcher interface {
	WatchID(id string) error
}
