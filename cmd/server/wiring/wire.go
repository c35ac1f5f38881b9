//go:build wireinject

package wiring

import (
	"log/slog"

	"github.com/google/wire"

	"github.com/acme/postsvc/adapters/gormstore"
	"github.com/acme/postsvc/config"
)

// The injectors: wire generates their bodies in wire_gen.go from the provider sets of each
// package. Regenerate with `make generate` after changing a constructor.

// NewServer builds everything `server serve` runs: every context, the HTTP kernel, the job
// workers and the metrics.
func NewServer(cfg *config.Config, logger *slog.Logger) (*Server, func(), error) {
	wire.Build(
		serverSet,
		accountsSet,
		postsSet,
		ecgSet,
		mediaSet,
		modules, authenticators, dataOwners, jobPools,
		wire.Struct(new(Server), "*"),
	)
	return nil, nil, nil
}

// NewMigration builds what `server migrate` needs: the database and its migrator.
func NewMigration(cfg *config.Config) (*Migration, func(), error) {
	wire.Build(
		wire.FieldsOf(new(*config.Config), "Database"),
		gormstore.Open,
		newMigrator,
		wire.Struct(new(Migration), "*"),
	)
	return nil, nil, nil
}

// NewAccounts builds what `server users create` needs: the migrator and the admin use case.
func NewAccounts(cfg *config.Config) (*Accounts, func(), error) {
	wire.Build(
		kernelSet,
		cliStampBoard,
		accountsCoreSet,
		noDataOwners,
		wire.Struct(new(Accounts), "*"),
	)
	return nil, nil, nil
}

// NewECG builds what `server ecg reanalyse` needs: the migrator and the ECG use case, without
// the HTTP stack or the other contexts.
func NewECG(cfg *config.Config) (*ECG, func(), error) {
	wire.Build(
		kernelSet,
		ecgCoreSet,
		wire.Struct(new(ECG), "*"),
	)
	return nil, nil, nil
}

// NewMedia builds what `server media gc` needs: the migrator, the object store and the media
// use case, without the HTTP stack or the other contexts.
func NewMedia(cfg *config.Config, logger *slog.Logger) (*Media, func(), error) {
	wire.Build(
		kernelSet,
		cliStampBoard,
		storageSet,
		mediaCoreSet,
		wire.Struct(new(Media), "*"),
	)
	return nil, nil, nil
}
