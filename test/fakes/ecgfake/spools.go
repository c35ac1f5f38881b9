package ecgfake

import (
	"errors"
	"slices"

	"github.com/acme/postsvc/domain/ecg/ecg"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// Spools keeps uploads' blocks in memory (ecgport.Spools), for use-case tests; the real
// spools (adapters/ecg/ecgspool) also spill to files. Open counts spools not closed yet, so a
// test can check that every upload released its own.
type Spools struct {
	Open int
	// Reads counts the spools started with NewRead.
	Reads int
}

var _ ecgport.Spools = (*Spools)(nil)

// New starts a spool.
func (s *Spools) New() (ecgport.Spool, error) {
	s.Open++
	return &spool{parent: s}, nil
}

// NewRead starts a spool for a read back, counted in Reads too.
func (s *Spools) NewRead() (ecgport.Spool, error) {
	s.Reads++
	return s.New()
}

type spool struct {
	parent *Spools
	blocks []ecg.Block
	closed bool
}

func (s *spool) Put(b ecg.Block) error {
	if s.closed {
		return errors.New("ecgfake: put into a closed spool")
	}
	b.Data = slices.Clone(b.Data)
	s.blocks = append(s.blocks, b)
	return nil
}

func (s *spool) Each(fn func(ecg.Block) error) error {
	for _, b := range s.blocks {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

func (s *spool) Bytes() int64 {
	var n int64
	for _, b := range s.blocks {
		n += int64(len(b.Data))
	}
	return n
}

func (s *spool) Close() error {
	if !s.closed {
		s.closed = true
		s.parent.Open--
	}
	return nil
}
