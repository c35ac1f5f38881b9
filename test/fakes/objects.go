package fakes

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/acme/postsvc/adapters/storage"
	"github.com/acme/postsvc/ports"
)

// Objects is an in-memory ports.ObjectStore for use-case tests, dating objects by a clock the
// test controls. It passes the storage contract (test/contract/storage) like the real stores.
type Objects struct {
	mu    sync.Mutex
	objs  map[string]storedObject
	clock ports.Clock
	// FailPut, when set, makes every Put fail with it after reading a little of the body.
	FailPut error
}

type storedObject struct {
	data     []byte
	modified time.Time
}

var _ ports.ObjectStore = (*Objects)(nil)

// NewObjects returns an empty store on clock.
func NewObjects(clock ports.Clock) *Objects {
	return &Objects{objs: map[string]storedObject{}, clock: clock}
}

// Put implements ports.ObjectStore: the object appears whole once r is read to its end.
func (o *Objects) Put(ctx context.Context, key string, r io.Reader, size int64, _ string) (int64, error) {
	if err := storage.ValidateKey(key); err != nil {
		return 0, err
	}
	o.mu.Lock()
	fail := o.FailPut
	o.mu.Unlock()
	if fail != nil {
		_, _ = io.CopyN(io.Discard, r, 100)
		return 0, fail
	}
	data, err := io.ReadAll(ctxReader{ctx: ctx, r: r})
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if size >= 0 && int64(len(data)) != size {
		return 0, fmt.Errorf("fakes: put %s: %d bytes, announced %d", key, len(data), size)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.objs[key] = storedObject{data: data, modified: o.clock.Now()}
	return int64(len(data)), nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open implements ports.ObjectStore.
func (o *Objects) Open(_ context.Context, key string) (ports.Object, error) {
	info, data, err := o.get(key)
	if err != nil {
		return nil, err
	}
	return &memObject{Reader: bytes.NewReader(data), info: info}, nil
}

// Stat implements ports.ObjectStore.
func (o *Objects) Stat(_ context.Context, key string) (ports.ObjectInfo, error) {
	info, _, err := o.get(key)
	return info, err
}

func (o *Objects) get(key string) (ports.ObjectInfo, []byte, error) {
	if err := storage.ValidateKey(key); err != nil {
		return ports.ObjectInfo{}, nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	obj, ok := o.objs[key]
	if !ok {
		return ports.ObjectInfo{}, nil, ports.ErrObjectNotFound
	}
	return ports.ObjectInfo{Key: key, Size: int64(len(obj.data)), Modified: obj.modified}, obj.data, nil
}

// Delete implements ports.ObjectStore.
func (o *Objects) Delete(_ context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.objs, key)
	return nil
}

// List implements ports.ObjectStore, on a snapshot taken when it starts.
func (o *Objects) List(ctx context.Context, prefix string, fn func(ports.ObjectInfo) error) error {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return err
	}
	o.mu.Lock()
	var infos []ports.ObjectInfo
	for key, obj := range o.objs {
		if strings.HasPrefix(key, prefix) {
			infos = append(infos, ports.ObjectInfo{Key: key, Size: int64(len(obj.data)), Modified: obj.modified})
		}
	}
	o.mu.Unlock()
	slices.SortFunc(infos, func(a, b ports.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Check implements ports.ObjectStore: the fake is always usable.
func (o *Objects) Check(context.Context) error { return nil }

// Keys lists every stored key, sorted.
func (o *Objects) Keys() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	keys := make([]string, 0, len(o.objs))
	for k := range o.objs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

type memObject struct {
	*bytes.Reader
	info ports.ObjectInfo
}

func (m *memObject) Close() error           { return nil }
func (m *memObject) Info() ports.ObjectInfo { return m.info }
