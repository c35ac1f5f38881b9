package wiring

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/google/wire"

	"github.com/acme/postsvc/adapters/storage/fsstore"
	"github.com/acme/postsvc/adapters/storage/s3store"
	"github.com/acme/postsvc/config"
	"github.com/acme/postsvc/ports"
)

// openObjectStore builds the object store APP_STORAGE_DRIVER names: the filesystem store in
// <data dir>/media (removing the temporaries of uploads that a crash interrupted over an hour
// ago), or the S3 store on APP_STORAGE_S3_BUCKET. It makes no request to S3: the readiness
// check (ports.ObjectStore.Check, a HeadBucket) tells whether the bucket answers. The
// cleanup releases the store.
func openObjectStore(cfg config.Storage, logger *slog.Logger) (ports.ObjectStore, func(), error) {
	switch cfg.Driver {
	case config.StorageS3:
		s, err := s3store.New(context.Background(), s3Settings(cfg.S3))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", config.EnvName("storage.driver"), err)
		}
		logger.Info("object storage", "driver", config.StorageS3, "bucket", cfg.S3.Bucket, "endpoint", cfg.S3.Endpoint,
			"region", cfg.S3.Region, "path_style", cfg.S3.ForcePathStyle, "sse", cfg.S3.SSE)
		return s, func() {}, nil
	case config.StorageFilesystem, "":
		s, err := fsstore.New(cfg.Dir, fsstore.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: object storage folder: %w", config.EnvName("data_dir"), err)
		}
		logger.Info("object storage", "driver", config.StorageFilesystem, "dir", cfg.Dir)
		return s, func() { _ = s.Close() }, nil
	}
	return nil, nil, fmt.Errorf("%s: unknown driver %q", config.EnvName("storage.driver"), cfg.Driver)
}

// s3Settings maps the validated settings to the S3 store's.
func s3Settings(cfg config.S3) s3store.Settings {
	return s3store.Settings{
		Bucket: cfg.Bucket, Endpoint: cfg.Endpoint, Region: cfg.Region,
		AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey,
		ForcePathStyle: cfg.ForcePathStyle, SSE: cfg.SSE,
	}
}

// storageSet is the object store the contexts keep large files in.
//
//nolint:unused // used by the wireinject injectors
var storageSet = wire.NewSet(openObjectStore)
