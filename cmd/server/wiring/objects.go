package wiring

import (
	"path/filepath"

	"github.com/google/wire"

	"github.com/acme/postsvc/adapters/storage/fsstore"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
)

// storageSet is the object store the contexts keep large files in.
//
//nolint:unused // used by the wireinject injectors
var storageSet = wire.NewSet(newObjectStore)

// newObjectStore opens the filesystem store under the data folder.
func newObjectStore(cfg *config.Config) (ports.ObjectStore, func(), error) {
	s, err := fsstore.New(filepath.Join(cfg.DataDir, "media"), fsstore.Options{})
	if err != nil {
		return nil, nil, err
	}
	return s, func() { _ = s.Close() }, nil
}
