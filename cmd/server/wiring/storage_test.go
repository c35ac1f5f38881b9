package wiring

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/adapters/storage/fsstore"
	"github.com/acme/postsvc/adapters/storage/s3store"
	"github.com/acme/postsvc/config"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// storageConfig loads the settings from the given environment, as the server does.
func storageConfig(t *testing.T, env map[string]string) config.Storage {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "APP_") {
			t.Setenv(k, "")
			_ = os.Unsetenv(k)
		}
	}
	t.Setenv("APP_DATA_DIR", t.TempDir())
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Storage
}

func TestObjectStoreDefaultsToTheDataFolder(t *testing.T) {
	cfg := storageConfig(t, nil)
	store, cleanup, err := openObjectStore(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	fs, ok := store.(*fsstore.Store)
	if !ok || fs.Dir() != filepath.Join(os.Getenv("APP_DATA_DIR"), "media") {
		t.Fatalf("the default store is %T in %q, want the filesystem store in <data dir>/media", store, cfg.Dir)
	}
	if _, err := store.Put(t.Context(), "k", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	if err := store.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestObjectStoreOnS3 builds the S3 store from APP_STORAGE_S3_*, and its check, which
// /readyz runs, fails when the bucket cannot be reached.
func TestObjectStoreOnS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("media"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	env := map[string]string{
		"APP_STORAGE_DRIVER": "s3", "APP_STORAGE_S3_BUCKET": "media", "APP_STORAGE_S3_ENDPOINT": srv.URL,
		"APP_STORAGE_S3_ACCESS_KEY_ID": "AKID", "APP_STORAGE_S3_SECRET_ACCESS_KEY": "secret", "APP_STORAGE_S3_FORCE_PATH_STYLE": "true",
	}
	store, cleanup, err := openObjectStore(storageConfig(t, env), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if _, ok := store.(*s3store.Store); !ok {
		t.Fatalf("APP_STORAGE_DRIVER=s3 built %T", store)
	}
	if _, err := store.Put(t.Context(), "k", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	ready := httpapi.NewReadiness(func(ctx context.Context) error { return store.Check(ctx) })
	if err := ready.Check(t.Context()); err != nil {
		t.Fatalf("ready with the bucket there: %v", err)
	}

	env["APP_STORAGE_S3_BUCKET"] = "no-such-bucket"
	missing, cleanup2, err := openObjectStore(storageConfig(t, env), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup2()
	if err := httpapi.NewReadiness(func(ctx context.Context) error { return missing.Check(ctx) }).Check(t.Context()); err == nil {
		t.Fatal("ready although the bucket does not exist")
	}
	srv.Close()
	if err := ready.Check(t.Context()); err == nil {
		t.Fatal("ready although the S3 server is down")
	}
}

func TestS3SettingsCarryEveryValue(t *testing.T) {
	got := s3Settings(config.S3{Bucket: "b", Endpoint: "http://e", Region: "r", AccessKeyID: "a", SecretAccessKey: "s", ForcePathStyle: true, SSE: "none"})
	want := s3store.Settings{Bucket: "b", Endpoint: "http://e", Region: "r", AccessKeyID: "a", SecretAccessKey: "s", ForcePathStyle: true, SSE: "none"}
	if got.String() != want.String() || got.SecretAccessKey != "s" {
		t.Fatalf("%v, want %v", got, want)
	}
}
