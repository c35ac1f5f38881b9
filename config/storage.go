package config

import (
	"net/url"
	"path/filepath"
	"strings"
)

// Object storage drivers (APP_STORAGE_DRIVER).
const (
	StorageFilesystem = "filesystem"
	StorageS3         = "s3"
)

// Server-side encryption values of APP_STORAGE_S3_SSE.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
	SSENone   = "none"
)

// Storage configures the object store that keeps large files (images) outside the database.
type Storage struct {
	// Driver is StorageFilesystem (the default) or StorageS3.
	Driver string `mapstructure:"driver"`
	// Dir is the filesystem store's folder: <data dir>/media. It is derived, not a setting.
	Dir string `mapstructure:"-"`
	S3  S3     `mapstructure:"s3"`
}

// S3 configures the S3 object store (AWS S3 or an S3-protocol server).
type S3 struct {
	Bucket string `mapstructure:"bucket"`
	// Endpoint is the server's URL (http://host:port); empty for AWS itself.
	Endpoint string `mapstructure:"endpoint"`
	// Region defaults to us-east-1 when empty.
	Region string `mapstructure:"region"`
	// AccessKeyID and SecretAccessKey are static credentials; when both are empty the AWS
	// SDK's default chain finds them (environment, shared files, IAM roles).
	AccessKeyID     string `mapstructure:"access_key_id"`
	SecretAccessKey string `mapstructure:"secret_access_key" secret:"true"`
	// ForcePathStyle addresses buckets in the path, which most S3-protocol servers need.
	ForcePathStyle bool `mapstructure:"force_path_style"`
	// SSE is the server-side encryption of every object: SSEAES256, SSEKMS or SSENone.
	SSE string `mapstructure:"sse"`
}

// finishStorage validates the storage settings and derives the filesystem folder. No message
// shows the secret key.
func (c *Config) finishStorage(bad func(key, format string, args ...any)) {
	s := &c.Storage
	s.Dir = filepath.Join(c.DataDir, "media")
	s.Driver = strings.ToLower(strings.TrimSpace(s.Driver))
	switch s.Driver {
	case StorageFilesystem:
		return
	case StorageS3:
	default:
		bad("storage.driver", "must be %q or %q, got %q", StorageFilesystem, StorageS3, s.Driver)
		return
	}
	s.S3.Bucket = strings.TrimSpace(s.S3.Bucket)
	if s.S3.Bucket == "" {
		bad("storage.s3.bucket", "is required when %s is %s", EnvName("storage.driver"), StorageS3)
	}
	switch sse := strings.TrimSpace(s.S3.SSE); {
	case strings.EqualFold(sse, SSEAES256):
		s.S3.SSE = SSEAES256
	case strings.EqualFold(sse, SSEKMS):
		s.S3.SSE = SSEKMS
	case strings.EqualFold(sse, SSENone):
		s.S3.SSE = SSENone
	default:
		bad("storage.s3.sse", "must be %s, %s or %s, got %q", SSEAES256, SSEKMS, SSENone, s.S3.SSE)
	}
	if (s.S3.AccessKeyID == "") != (s.S3.SecretAccessKey == "") {
		bad("storage.s3.access_key_id", "and %s must be set together (or both left empty for the AWS default credential chain)", EnvName("storage.s3.secret_access_key"))
	}
	if s.S3.Endpoint != "" {
		u, err := url.Parse(s.S3.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("storage.s3.endpoint", "must be an http:// or https:// URL such as http://127.0.0.1:7070, got %q", s.S3.Endpoint)
		}
	}
}
