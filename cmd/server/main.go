// Command server runs the accounts, posts, ECG and images API. Without arguments it serves
// HTTP; the subcommands apply database migrations, create accounts (the first admin), and
// start the ECG reanalysis or the sweep of orphaned image objects.
//
//	server                         serve (same as "server serve")
//	server migrate up|down|status  manage the schema
//	server users create --email E [--password P] [--role admin] [--name N]
//	server ecg reanalyse           enqueue the recomputation of outdated ECG insights
//	server media gc                remove stored objects that no image refers to
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"
)

func main() {
	// Gin's debug mode prints every route at start and warns on each run; the service logs
	// through slog instead.
	gin.SetMode(gin.ReleaseMode)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
