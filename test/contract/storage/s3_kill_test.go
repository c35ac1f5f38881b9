package storage_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/acme/postsvc/adapters/storage/s3store"
	"github.com/acme/postsvc/ports"
	"github.com/acme/postsvc/test/contract/storage"
)

const (
	envS3KillChild  = "STORAGE_S3_KILL_CHILD"
	envS3KillBucket = "STORAGE_S3_KILL_BUCKET"
	// One whole part (8 MiB) is uploaded, then the child waits inside the second.
	s3KillWritten = s3store.DefaultPartSize + 1<<20
)

// TestS3PutKilled SIGKILLs a process in the middle of a multipart upload to the real server
// (one part uploaded): no object appears under the key and List reports nothing; the
// unfinished upload stays until Sweep aborts it.
func TestS3PutKilled(t *testing.T) {
	if os.Getenv(envS3KillChild) == "1" {
		runS3KillChild(t)
		return
	}
	srv := storage.S3(t)
	store := srv.NewBucket(t)
	child := startKillChild(t, "TestS3PutKilled", envS3KillChild+"=1", envS3KillBucket+"="+store.Bucket(),
		storage.EnvS3Endpoint+"="+srv.Endpoint, storage.EnvS3AccessKey+"="+srv.AccessKey,
		storage.EnvS3SecretKey+"="+srv.SecretKey, storage.EnvS3Region+"="+srv.Region)
	if n := storage.PendingUploads(t, store); n != 1 {
		t.Fatalf("%d multipart uploads in progress mid-put, want 1", n)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	if _, err := store.Stat(t.Context(), killKey); !errors.Is(err, ports.ErrObjectNotFound) {
		t.Fatalf("the key holds something after a killed put: %v", err)
	}
	listed := 0
	if err := store.List(t.Context(), "", func(ports.ObjectInfo) error { listed++; return nil }); err != nil || listed != 0 {
		t.Fatalf("list after the kill: %d objects, %v", listed, err)
	}
	if n, err := store.Sweep(t.Context(), time.Hour); err != nil || n != 0 {
		t.Fatalf("a sweep of uploads older than an hour aborted %d, %v; want none", n, err)
	}
	if n, err := store.Sweep(t.Context(), 0); err != nil || n != 1 {
		t.Fatalf("sweep aborted %d, %v; want the killed upload", n, err)
	}
	if n := storage.PendingUploads(t, store); n != 0 {
		t.Fatalf("%d uploads remain after the sweep", n)
	}
}

func runS3KillChild(t *testing.T) {
	srv := storage.S3(t)
	store, err := s3store.New(t.Context(), srv.Settings(os.Getenv(envS3KillBucket)))
	if err != nil {
		t.Fatal(err)
	}
	r := io.MultiReader(bytes.NewReader(storage.RandomBytes(s3KillWritten, 3)), announceThenBlock{})
	_, err = store.Put(t.Context(), killKey, r, -1, "")
	t.Fatalf("the put returned (%v); it should have been killed", err)
}
