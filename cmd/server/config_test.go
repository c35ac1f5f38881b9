package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestLoadConfigLogsNearMissVariables: an APP_ variable that is close to a setting's name is
// logged as a warning by every command that loads the configuration, in the configured log
// format, and does not stop it.
func TestLoadConfigLogsNearMissVariables(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "APP_") {
			t.Setenv(k, "")
			_ = os.Unsetenv(k)
		}
	}
	t.Setenv("APP_DATA_DIR", t.TempDir())
	t.Setenv("APP_LOG_FORMAT", "json")
	t.Setenv("APP_CACHE_POST_TTL", "1m")
	cmd := newRootCommand()
	var stderr bytes.Buffer
	cmd.SetErr(&stderr)
	if _, err := loadConfig(cmd); err != nil {
		t.Fatal(err)
	}
	want := `{"time":`
	line := strings.TrimSpace(stderr.String())
	if !strings.HasPrefix(line, want) || !strings.Contains(line, `"level":"WARN"`) ||
		!strings.Contains(line, `"msg":"configuration: APP_CACHE_POST_TTL is not a setting and is ignored; did you mean APP_CACHE_POSTS_TTL?"`) {
		t.Errorf("stderr %q, want one JSON warning naming APP_CACHE_POST_TTL and APP_CACHE_POSTS_TTL", line)
	}
}
