package imaging

import (
	"context"
	"errors"
	"io"
	"sync"
)

// bufSize holds any JPEG segment (at most 65,535 bytes with its marker and length).
const bufSize = 64<<10 + 4

// errTruncated marks the end of the input reached inside a structure; the format code turns
// it into a wrapped media.ErrUnsupportedFormat. Any other read error is r's and is returned
// as it is.
var errTruncated = errors.New("file ends early")

// source is a small buffered reader that reads only what it is asked for until ahead is
// set: before the dimensions are checked, no byte past the header is taken from r. After
// the check it reads ahead a buffer at a time.
type source struct {
	ctx      context.Context
	r        io.Reader
	buf      []byte
	pos, end int
	ahead    bool
	err      error // sticky read error
	off      int64 // bytes consumed
}

// bufPool recycles source buffers: a burst of uploads of small files would otherwise
// allocate 64 KiB per file for the collector to sweep.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, bufSize)
	return &b
}}

func newSource(ctx context.Context, r io.Reader) *source {
	b, _ := bufPool.Get().(*[]byte)
	return &source{ctx: ctx, r: r, buf: *b}
}

// release returns the buffer to the pool; the source is not used afterwards.
func (s *source) release() {
	b := s.buf
	s.buf, s.r = nil, nil
	bufPool.Put(&b)
}

func (s *source) buffered() int { return s.end - s.pos }

// fill makes at least need bytes (need <= len(s.buf)) available.
func (s *source) fill(need int) error {
	if s.buffered() >= need {
		return nil
	}
	if s.pos > 0 {
		copy(s.buf, s.buf[s.pos:s.end])
		s.end -= s.pos
		s.pos = 0
	}
	empty := 0
	for s.end < need {
		if s.err != nil {
			return s.err
		}
		if err := s.ctx.Err(); err != nil {
			return err
		}
		limit := need
		if s.ahead {
			limit = len(s.buf)
		}
		n, err := s.r.Read(s.buf[s.end:limit])
		if n < 0 || n > limit-s.end {
			return errors.New("imaging: reader returned an invalid count")
		}
		s.end += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errTruncated
			}
			s.err = err
		}
		if n == 0 && err == nil {
			if empty++; empty > 100 {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// peek returns the next n bytes (n <= bufSize) without consuming them.
func (s *source) peek(n int) ([]byte, error) {
	if err := s.fill(n); err != nil {
		return nil, err
	}
	return s.buf[s.pos : s.pos+n], nil
}

// next returns the next n bytes (n <= bufSize) and consumes them. The slice is valid until
// the next call.
func (s *source) next(n int) ([]byte, error) {
	b, err := s.peek(n)
	if err != nil {
		return nil, err
	}
	s.skip(n)
	return b, nil
}

func (s *source) skip(n int) {
	s.pos += n
	s.off += int64(n)
}

func (s *source) byte() (byte, error) {
	b, err := s.next(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// copyN moves n bytes to w (nil: discard), feeding each piece to sum when it is not nil.
func (s *source) copyN(w io.Writer, n int64, sum func([]byte)) error {
	for n > 0 {
		if s.buffered() == 0 {
			if err := s.fill(int(min(n, int64(len(s.buf))))); err != nil {
				return err
			}
		}
		k := int(min(n, int64(s.buffered())))
		chunk := s.buf[s.pos : s.pos+k]
		if sum != nil {
			sum(chunk)
		}
		if w != nil {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		s.skip(k)
		n -= int64(k)
	}
	return nil
}
