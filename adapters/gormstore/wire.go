package gormstore

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/ports"
)

// ProviderSet provides the database pool (with its cleanup) from config.Database, the unit of
// work as ports.UnitOfWork and the readiness probe's Pinger. Each context's repositories come
// from its own package (accountsgorm, postsgorm). Migrations are left to the caller
// (NewMigrator): whether to run them at start-up is a decision of the command.
var ProviderSet = wire.NewSet(
	Open,
	NewUnitOfWork,
	wire.Bind(new(ports.UnitOfWork), new(*UnitOfWork)),
	NewPinger,
)
