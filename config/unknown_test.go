package config_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/postsvc/config"
)

// TestUnknownFileKeysStopStartUp: a key of the configuration file that is not a setting is
// an error naming the file and the key, with the closest setting when there is one (a typo,
// or a setting outside its section), so a misspelt setting never leaves its default in force
// unnoticed. A key under a setting is the decoding check's to report (a section given to a
// single value), once.
func TestUnknownFileKeysStopStartUp(t *testing.T) {
	dir := isolate(t)
	file := filepath.Join(dir, "cfg.yaml")
	yaml := `cache:
  post_ttl: 1m
posts_max_bytes: 1024
HTTP:
  Adr: ":9000"
  read_timeout: 30s
ecg:
  workers: 2
totally_unrelated: 1
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := loadErr(t, nil, file, nil)
	prefix := "config file " + file + ": "
	wantAll(t, msg,
		prefix+`"cache.post_ttl" is not a setting; did you mean "cache.posts_ttl" (APP_CACHE_POSTS_TTL)?`,
		prefix+`"posts_max_bytes" is not a setting; did you mean "cache.posts_max_bytes" (APP_CACHE_POSTS_MAX_BYTES)?`,
		prefix+`"http.adr" is not a setting; did you mean "http.addr" (APP_HTTP_ADDR)?`,
		prefix+`"totally_unrelated" is not a setting (the README lists the settings)`,
	)
	if n := strings.Count(msg, "\n") + 1; n != 4 {
		t.Errorf("%d lines, want 4 (http.read_timeout and ecg.workers are settings):\n%s", n, msg)
	}

	under := filepath.Join(dir, "under.yaml")
	if err := os.WriteFile(under, []byte("http:\n  addr:\n    port: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	msg = loadErr(t, nil, under, nil)
	if strings.Contains(msg, "is not a setting") || !strings.Contains(msg, "APP_HTTP_ADDR (key http.addr") {
		t.Errorf("a section under a setting is reported as a value of the wrong kind, once:\n%s", msg)
	}
}

// TestEveryKnownFileKeyLoads: a file that sets every setting, at its default, loads: the
// check above refuses nothing that is a setting.
func TestEveryKnownFileKeyLoads(t *testing.T) {
	dir := isolate(t)
	doc := map[string]any{}
	for key, value := range config.Defaults() {
		if key == "data_dir" {
			value = dir
		}
		parts := strings.Split(key, ".")
		m := doc
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = value
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "all.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(file, nil); err != nil {
		t.Fatalf("a file of every setting at its default does not load: %v", err)
	}
}

// TestNearMissEnvironmentNamesAreWarned: an APP_ variable that is not a setting is ignored,
// since the environment is shared (Kubernetes adds APP_SERVICE_HOST for a Service named
// "app"); one close to a setting's name is a likely typo, and is warned about by name.
func TestNearMissEnvironmentNamesAreWarned(t *testing.T) {
	isolate(t)
	t.Setenv("APP_CACHE_POST_TTL", "1m")
	t.Setenv("APP_LOG_LEVL", "debug")
	t.Setenv("APP_SERVICE_HOST", "10.0.0.1")
	t.Setenv("APP_PORT_8080_TCP", "tcp://10.0.0.1:8080")
	t.Setenv("APP_CACHE_POSTS_TTL", "2m")
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"APP_CACHE_POST_TTL is not a setting and is ignored; did you mean APP_CACHE_POSTS_TTL?",
		"APP_LOG_LEVL is not a setting and is ignored; did you mean APP_LOG_LEVEL?",
	}
	if strings.Join(cfg.Warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(cfg.Warnings, "\n"), strings.Join(want, "\n"))
	}
}
