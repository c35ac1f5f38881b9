package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/acme/postsvc/config"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	cmd, args string
	stage     int // index of the FROM it belongs to
}

func parseDockerfile(t *testing.T, data []byte) []instruction {
	t.Helper()
	var out []instruction
	stage := -1
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, instruction{cmd: cmd, args: strings.TrimSpace(args), stage: stage})
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return out
}

// dockerfileEnv returns the ENV settings of the final stage.
func dockerfileEnv(ins []instruction, final int) map[string]string {
	env := map[string]string{}
	kv := regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)`)
	for _, in := range ins {
		if in.cmd == "ENV" && in.stage == final {
			for _, m := range kv.FindAllStringSubmatch(in.args, -1) {
				env[m[1]] = strings.Trim(m[2], `"`)
			}
		}
	}
	return env
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, read(t, "deployments/Dockerfile"))
	final := ins[len(ins)-1].stage
	if final < 1 {
		t.Fatal("the Dockerfile is not multi-stage")
	}
	var from, user, entrypoint, build string
	var copies []string
	var expose []string
	args := map[string]string{}
	for _, in := range ins {
		switch {
		case in.cmd == "ARG" && in.stage < 0:
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case in.cmd == "FROM" && in.stage == final:
			from = in.args
		case in.cmd == "USER" && in.stage == final:
			user = in.args
		case in.cmd == "EXPOSE" && in.stage == final:
			expose = append(expose, strings.Fields(in.args)...)
		case in.cmd == "ENTRYPOINT" && in.stage == final:
			entrypoint = in.args
		case in.cmd == "COPY" && in.stage == final:
			copies = append(copies, in.args)
		case in.cmd == "RUN" && in.stage < final && strings.Contains(in.args, "go build"):
			build = in.args
		}
	}

	if from != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final image %q, want gcr.io/distroless/static-debian12:nonroot", from)
	}
	if u, _, _ := strings.Cut(user, ":"); u != "nonroot" && u != "65532" {
		t.Errorf("USER %q, want nonroot", user)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || !slices.Equal(ep, []string{"/server"}) {
		t.Errorf(`ENTRYPOINT %s, want ["/server"] (exec form)`, entrypoint)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "./cmd/server"} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build step lacks %s: %q", want, build)
		}
	}
	// The binary the final stage copies is the one the build stage writes.
	out := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(build)
	if out == nil || !slices.ContainsFunc(copies, func(c string) bool {
		return strings.Contains(c, out[1]+" /server") && strings.Contains(c, "--from=")
	}) {
		t.Errorf("no COPY of %q takes the built binary %v to /server", copies, out)
	}
	// The data folder (APP_DATA_DIR, /data from the working directory /) exists owned by the
	// nonroot user, so a volume mounted there (compose's media volume) is writable by it.
	if !slices.ContainsFunc(copies, func(c string) bool {
		return strings.Contains(c, "--chown=65532:65532") && strings.HasSuffix(c, " /data")
	}) {
		t.Errorf("no COPY makes /data owned by nonroot (65532): %q", copies)
	}

	// The builder's Go matches go.mod.
	goDirective := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(read(t, "go.mod"))
	if goDirective == nil || args["GO_VERSION"] != string(goDirective[1]) {
		t.Errorf("ARG GO_VERSION=%q, go.mod says go %s", args["GO_VERSION"], goDirective[1])
	}

	env := dockerfileEnv(ins, final)
	assertKnownEnv(t, "Dockerfile ENV", env)
	addr := env["APP_HTTP_ADDR"]
	if addr == "" {
		addr = config.Defaults()["http.addr"].(string)
	}
	if !slices.Equal(expose, []string{strconv.Itoa(portOf(t, addr))}) {
		t.Errorf("EXPOSE %v, but the service listens on %s", expose, addr)
	}
	// The image on its own, given only the two secrets, starts.
	env["APP_AUTH_JWT_SECRET"] = strings.Repeat("s", config.MinSecretBytes)
	env["APP_DATABASE_DRIVER"] = "mysql"
	env["APP_DATABASE_DSN"] = "u:p@tcp(db:3306)/postsvc"
	assertLoads(t, "Dockerfile ENV", env)
}
