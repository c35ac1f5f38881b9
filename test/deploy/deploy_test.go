// Package deploy checks the deployment files (deployments/) against the code they deploy.
// There is no Docker engine or Kubernetes cluster here, so the files are checked
// structurally: what can drift from the code is compared with the code itself (probe paths
// with the router's routes, environment variables with config.Defaults, ports with the listen
// address), and the security and ordering properties are asserted field by field.
package deploy_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/config"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

// root is the repository root (the test runs in test/deploy).
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root not found from the test directory: %v", err)
	}
	return dir
}

func read(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// knownEnv is every environment variable the service reads.
func knownEnv() map[string]string {
	out := map[string]string{}
	for key := range config.Defaults() {
		out[config.EnvName(key)] = key
	}
	return out
}

// routes returns the GET routes of the kernel's router (the probes the deployment files name
// are the kernel's own, whatever the modules), and the router itself.
func routes(t *testing.T) (map[string]bool, http.Handler) {
	t.Helper()
	e, err := httpapi.NewRouter(httpapi.RouterDeps{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method == http.MethodGet {
			out[r.Path] = true
		}
	}
	return out, e
}

// assertProbePath fails unless path is a GET route of the router that answers 200 without
// credentials when the service is ready.
func assertProbePath(t *testing.T, where, path string) {
	t.Helper()
	get, h := routes(t)
	if !get[path] {
		t.Errorf("%s: probe path %q is not a GET route of the router", where, path)
		return
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Errorf("%s: probe GET %s answers %d, want 200", where, path, rec.Code)
	}
}

// portOf returns the port of a listen address (":8080" -> 8080).
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return n
}

func defaultDuration(t *testing.T, key string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(config.Defaults()[key].(string))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// durationSetting returns the duration env sets for key, or its default.
func durationSetting(t *testing.T, env map[string]string, key string) time.Duration {
	t.Helper()
	v, ok := env[config.EnvName(key)]
	if !ok {
		return defaultDuration(t, key)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", config.EnvName(key), v, err)
	}
	return d
}

// shutdownNeed is how long the process may take to stop after SIGTERM: the HTTP server
// drains after its delay, while the job workers' grace starts at SIGTERM, at the same time.
func shutdownNeed(t *testing.T, env map[string]string) time.Duration {
	t.Helper()
	return max(durationSetting(t, env, "http.shutdown_delay")+durationSetting(t, env, "http.shutdown_grace"),
		durationSetting(t, env, "jobs.shutdown_grace"))
}

// assertLoads checks that env is a configuration the service accepts, by loading it with
// config.Load as the binary does. Values the deployment files take from secrets or from the
// operator's shell are replaced by placeholders of the right shape.
func assertLoads(t *testing.T, where string, env map[string]string) {
	t.Helper()
	for k := range knownEnv() {
		t.Setenv(k, "") // unset anything inherited, then drop it
		_ = os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	t.Setenv("APP_DATA_DIR", t.TempDir())
	if _, err := config.Load("", nil); err != nil {
		t.Errorf("%s: the service would refuse these settings: %v", where, err)
	}
}

// assertKnownEnv fails for every APP_* variable that is not a setting of the service.
func assertKnownEnv(t *testing.T, where string, env map[string]string) {
	t.Helper()
	known := knownEnv()
	for name := range env {
		if strings.HasPrefix(name, config.EnvPrefix+"_") && known[name] == "" {
			t.Errorf("%s sets %s, which is not a setting (config.Defaults has no such key)", where, name)
		}
	}
}

// redisDefaultPort is where redis-server listens unless its command says --port.
const redisDefaultPort = 6379

// redisTarget returns the host and port an APP_REDIS_URL points at, failing for a URL that is
// not redis:// or rediss://.
func redisTarget(t *testing.T, where, raw string) (string, int) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Hostname() == "" {
		t.Fatalf("%s: APP_REDIS_URL=%q is not a redis://host:port/db URL", where, raw)
	}
	port := redisDefaultPort
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			t.Fatalf("%s: APP_REDIS_URL=%q: port %q", where, raw, p)
		}
	}
	return u.Hostname(), port
}

// redisServerPort checks that argv (a Redis container's command) runs redis-server without
// persistence, since Redis holds nothing the database cannot rebuild, and returns the port it
// listens on.
func redisServerPort(t *testing.T, where string, argv []string) int {
	t.Helper()
	if len(argv) == 0 || argv[0] != "redis-server" {
		t.Errorf("%s: runs %q, want redis-server with its options", where, argv)
	}
	opt := map[string]string{}
	for i, a := range argv {
		if strings.HasPrefix(a, "--") && i+1 < len(argv) {
			opt[a] = strings.Trim(argv[i+1], `"'`)
		}
	}
	if v, ok := opt["--save"]; !ok || v != "" {
		t.Errorf(`%s: %q does not switch snapshots off (--save "")`, where, argv)
	}
	if opt["--appendonly"] != "no" {
		t.Errorf("%s: %q does not switch the append-only file off (--appendonly no)", where, argv)
	}
	if p, ok := opt["--port"]; ok {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("%s: --port %q", where, p)
		}
		return n
	}
	return redisDefaultPort
}

// assertRedisImage fails unless image is Redis 7.
func assertRedisImage(t *testing.T, where, image string) {
	t.Helper()
	if image != "redis:7" && !strings.HasPrefix(image, "redis:7.") && !strings.HasPrefix(image, "redis:7-") {
		t.Errorf("%s: image %q, want redis:7", where, image)
	}
}
