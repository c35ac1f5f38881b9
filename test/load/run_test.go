package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/acme/postsvc/config"
)

// TestServersRunWithoutAnECGQuotaInReach: the runner's server takes an ECG quota far above
// what its ECG scenarios upload for one user (the default, 1 GiB, is passed by a long run),
// so their uploads are never refused; the backend's own settings do not change it.
func TestServersRunWithoutAnECGQuotaInReach(t *testing.T) {
	for _, be := range []backend{{driver: dbMySQL}, {driver: dbSQLite}} {
		r := &runner{tmp: t.TempDir(), be: be}
		var quota string
		for _, kv := range r.serverEnvironment("127.0.0.1:1") {
			if k, v, _ := strings.Cut(kv, "="); k == config.EnvName("ecg.quota_bytes") {
				quota = v
			}
		}
		n, err := strconv.ParseInt(quota, 10, 64)
		if err != nil || n < 1<<40 {
			t.Fatalf("%s: the server's APP_ECG_QUOTA_BYTES is %q; want at least 1 TiB", be.driver, quota)
		}
	}
}
