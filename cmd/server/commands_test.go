package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

// TestCommandErrorsSayWhatFailed checks that a command that fails says what it could not do:
// "media gc" once answered an unreachable object store with "cannot create the account".
func TestCommandErrorsSayWhatFailed(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{
			name: "media gc, object store unreachable",
			args: []string{"media", "gc"},
			env: map[string]string{
				"APP_STORAGE_DRIVER":               "s3",
				"APP_STORAGE_S3_BUCKET":            "media",
				"APP_STORAGE_S3_ENDPOINT":          "http://" + closedAddr(t),
				"APP_STORAGE_S3_ACCESS_KEY_ID":     "test",
				"APP_STORAGE_S3_SECRET_ACCESS_KEY": "test-secret",
			},
			want: "cannot remove orphaned objects: ",
		},
		{
			name: "users create, password too short",
			args: []string{"users", "create", "--email", "ada@example.io", "--password", "short"},
			want: "cannot create the account: ",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("APP_DATA_DIR", t.TempDir())
			t.Setenv("APP_DATABASE_DRIVER", "sqlite")
			t.Setenv("APP_DATABASE_DSN", "")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cmd := newRootCommand()
			cmd.SetArgs(c.args)
			var out, errOut bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			cmd.SetIn(strings.NewReader(""))
			err := cmd.ExecuteContext(context.Background())
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("server %s: error %v, want one starting %q (stdout %q)", strings.Join(c.args, " "), err, c.want, out.String())
			}
		})
	}
}

// closedAddr returns a loopback address that nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
