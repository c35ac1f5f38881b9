// Command server runs the accounts-and-posts API. Without arguments it serves HTTP; the
// subcommands apply database migrations and create accounts (the first admin).
//
//	server                         serve (same as "server serve")
//	server migrate up|down|status  manage the schema
//	server users create --email E [--password P] [--role admin] [--name N]
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
