package deploy_test

import (
	"encoding/json"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"

	"github.com/acme/postsvc/config"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string                    `yaml:"image"`
	Build       any                       `yaml:"build"`
	Command     any                       `yaml:"command"`
	Environment any                       `yaml:"environment"`
	Ports       []string                  `yaml:"ports"`
	DependsOn   map[string]map[string]any `yaml:"depends_on"`
	Healthcheck map[string]any            `yaml:"healthcheck"`
	StopGrace   string                    `yaml:"stop_grace_period"`
	ReadOnly    bool                      `yaml:"read_only"`
	Tmpfs       any                       `yaml:"tmpfs"`
	Volumes     []any                     `yaml:"volumes"`
}

// writable reports whether the service mounts something writable at dir (a tmpfs or a
// volume), which a read-only root file system needs for every folder the service writes.
func (s composeService) writable(dir string) bool {
	mounts := words(s.Tmpfs)
	for _, v := range s.Volumes {
		mounts = append(mounts, yamlScalar(v))
	}
	for _, m := range mounts {
		target, _, _ := strings.Cut(m, ":") // tmpfs target[:options]
		if parts := strings.Split(m, ":"); len(parts) > 1 && !strings.HasPrefix(m, "/") {
			target = parts[1] // volume:target[:mode]
		}
		if target == dir {
			return true
		}
	}
	return false
}

// volume reports whether the service mounts a volume (not a tmpfs, whose files are lost with
// the container) at dir.
func (s composeService) volume(dir string) bool {
	for _, v := range s.Volumes {
		if parts := strings.Split(yamlScalar(v), ":"); len(parts) > 1 && parts[1] == dir {
			return true
		}
	}
	return false
}

// env returns the service's environment, in either of compose's two forms.
func (s composeService) env(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch e := s.Environment.(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			out[k] = strings.TrimSpace(strings.Trim(yamlScalar(v), `"`))
		}
	case []any:
		for _, item := range e {
			k, v, _ := strings.Cut(yamlScalar(item), "=")
			out[k] = v
		}
	default:
		t.Fatalf("environment of unexpected shape %T", e)
	}
	return out
}

func yamlScalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// words returns a compose command as a list, splitting the string form on spaces.
func words(v any) []string {
	switch c := v.(type) {
	case string:
		return strings.Fields(c)
	case []any:
		out := make([]string, len(c))
		for i, w := range c {
			out[i] = yamlScalar(w)
		}
		return out
	}
	return nil
}

// interpolate replaces compose's ${VAR}, ${VAR:?msg} and ${VAR:-default} with placeholders,
// as the operator's shell would fill them.
func interpolate(s string) string {
	placeholders := map[string]string{
		"APP_AUTH_JWT_SECRET": strings.Repeat("j", config.MinSecretBytes),
		"MYSQL_PASSWORD":      "app-password",
		"MYSQL_ROOT_PASSWORD": "root-password",
	}
	return regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}`).ReplaceAllStringFunc(s, func(m string) string {
		name := regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)`).FindStringSubmatch(m)[1]
		if v, ok := placeholders[name]; ok {
			return v
		}
		return "placeholder"
	})
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	// yaml.v3 resolves the anchors and << merge keys compose files use.
	if err := yamlv3.Unmarshal(read(t, "deployments/compose.yaml"), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	db, rd, migrate, app := c.Services["mysql"], c.Services["redis"], c.Services["migrate"], c.Services["app"]
	if len(c.Services) != 4 || db.Image == "" || rd.Image == "" || migrate.Build == nil && migrate.Image == "" || app.Image == "" && app.Build == nil {
		t.Fatalf("want services mysql, redis, migrate and app; got %v", slices.Sorted(maps.Keys(c.Services)))
	}

	t.Run("mysql", func(t *testing.T) {
		if db.Image != "mysql:8.4" {
			t.Errorf("database image %q, want mysql:8.4", db.Image)
		}
		hc := db.Healthcheck
		test := strings.Join(words(hc["test"]), " ")
		queries := strings.Contains(test, "SELECT 1") && strings.Contains(test, "mysql ")
		pings := strings.Contains(test, "mysqladmin") && strings.Contains(test, "ping")
		if !queries && !pings {
			t.Errorf("the healthcheck neither queries nor pings the server: %q", test)
		}
		// With credentials, over TCP: the image's temporary init server listens on the socket
		// only, so a TCP check cannot pass before the real server is up.
		if !strings.Contains(test, "-u") || !strings.Contains(test, "MYSQL_PASSWORD") || !strings.Contains(test, "127.0.0.1") {
			t.Errorf("the healthcheck must log in as the application user over TCP: %q", test)
		}
		for _, k := range []string{"interval", "timeout", "retries", "start_period"} {
			if hc[k] == nil {
				t.Errorf("the healthcheck lacks %s", k)
			}
		}
		if r, _ := hc["retries"].(int); r < 5 {
			t.Errorf("healthcheck retries = %v: too few for a first start", hc["retries"])
		}
	})

	t.Run("redis", func(t *testing.T) {
		assertRedisImage(t, "compose redis", rd.Image)
		listen := redisServerPort(t, "compose redis", words(rd.Command))
		assertKnownEnv(t, "compose redis", rd.env(t))
		if test := strings.Join(words(rd.Healthcheck["test"]), " "); !strings.Contains(test, "redis-cli") || !strings.Contains(test, "ping") {
			t.Errorf("the Redis healthcheck does not run redis-cli ping: %q", test)
		}
		// Every instance of the service points at it.
		env := app.env(t)
		host, port := redisTarget(t, "compose app", env["APP_REDIS_URL"])
		if c.Services[host].Image != rd.Image || port != listen {
			t.Errorf("app: APP_REDIS_URL=%q does not reach the redis service (redis:%d)", env["APP_REDIS_URL"], listen)
		}
		// The service runs degraded without Redis, so Redis being healthy must never hold it
		// (or anything else) back: compose starts it first, and that is all.
		if cond := app.DependsOn["redis"]["condition"]; cond != "service_started" {
			t.Errorf("app depends on redis with condition %v, want service_started (the service starts and serves without Redis)", cond)
		}
		for name, svc := range c.Services {
			if cond := svc.DependsOn["redis"]["condition"]; cond != nil && cond != "service_started" {
				t.Errorf("%s waits for redis with condition %v; Redis being down must not stop anything from starting", name, cond)
			}
		}
	})

	t.Run("migrate", func(t *testing.T) {
		if got := words(migrate.Command); !slices.Equal(got, []string{"migrate", "up"}) {
			t.Errorf("migrate command %q, want [migrate up]", got)
		}
		if cond := migrate.DependsOn["mysql"]["condition"]; cond != "service_healthy" {
			t.Errorf("migrate depends on mysql with condition %v, want service_healthy", cond)
		}
		env := migrate.env(t)
		assertKnownEnv(t, "compose migrate", env)
		for k, v := range env {
			env[k] = interpolate(v)
		}
		assertLoads(t, "compose migrate", env)
	})

	t.Run("app", func(t *testing.T) {
		if cond := app.DependsOn["migrate"]["condition"]; cond != "service_completed_successfully" {
			t.Errorf("app depends on migrate with condition %v, want service_completed_successfully", cond)
		}
		if len(words(app.Command)) != 0 {
			t.Errorf("app overrides the command: %v", app.Command)
		}
		if migrate.Image != app.Image {
			t.Errorf("migrate runs image %q and app %q", migrate.Image, app.Image)
		}
		env := app.env(t)
		assertKnownEnv(t, "compose app", env)
		if env["APP_DATABASE_MIGRATE_ON_START"] != "false" {
			t.Errorf("app: APP_DATABASE_MIGRATE_ON_START=%q, want false (the migrate service migrates)", env["APP_DATABASE_MIGRATE_ON_START"])
		}
		if env["APP_DATABASE_DRIVER"] != config.DriverMySQL || !strings.Contains(env["APP_DATABASE_DSN"], "tcp(mysql:3306)") {
			t.Errorf("app does not use the mysql service: driver %q dsn %q", env["APP_DATABASE_DRIVER"], env["APP_DATABASE_DSN"])
		}
		addr := env["APP_HTTP_ADDR"]
		if addr == "" {
			addr = config.Defaults()["http.addr"].(string)
		}
		want := strconv.Itoa(portOf(t, addr))
		if len(app.Ports) == 0 {
			t.Error("app publishes no port")
		}
		for _, p := range app.Ports {
			parts := strings.Split(p, ":")
			if parts[len(parts)-1] != want {
				t.Errorf("app publishes %q, but the service listens on %s", p, addr)
			}
		}
		stop, err := time.ParseDuration(app.StopGrace)
		if err != nil {
			t.Errorf("stop_grace_period %q: %v", app.StopGrace, err)
		} else if need := shutdownNeed(t, env); stop <= need {
			t.Errorf("stop_grace_period %s must exceed the longer of HTTP shutdown delay + grace and the jobs' grace (%s), or requests and jobs are cut off", stop, need)
		}
		// ECG uploads beyond the spool's memory wait in files under APP_ECG_SPOOL_DIR (the
		// system's temporary folder by default), and the service makes that folder at start:
		// on a read-only root file system it must be mounted writable.
		spool := env["APP_ECG_SPOOL_DIR"]
		if spool == "" {
			spool = "/tmp"
		}
		if app.ReadOnly && !app.writable(spool) {
			t.Errorf("app has a read-only root file system and nothing writable at %s, where ECG uploads spool", spool)
		}
		// The filesystem image store makes APP_DATA_DIR/media at start (./data from the
		// image's working directory, /, by default), so the data folder must be writable, and
		// kept: it holds the images.
		if d := env["APP_STORAGE_DRIVER"]; d == "" || d == "filesystem" {
			data := path.Clean(path.Join("/", env["APP_DATA_DIR"]))
			if env["APP_DATA_DIR"] == "" {
				data = "/data"
			}
			if app.ReadOnly && !app.volume(data) {
				t.Errorf("app keeps images on the filesystem store under %s, where no volume is mounted", data)
			}
		}
		for k, v := range env {
			env[k] = interpolate(v)
		}
		assertLoads(t, "compose app", env)
	})
}
