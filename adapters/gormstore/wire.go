package gormstore

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/ports"
)

// ProviderSet provides the database pool (with its cleanup) from config.Database, the
// repositories as ports.Repositories and the unit of work as ports.UnitOfWork. Migrations are
// left to the caller (NewMigrator), because whether to run them at start-up is a decision of
// the command, not of the wiring.
var ProviderSet = wire.NewSet(
	Open,
	NewStore,
	wire.Bind(new(ports.Repositories), new(*Store)),
	NewUnitOfWork,
	wire.Bind(new(ports.UnitOfWork), new(*UnitOfWork)),
)
