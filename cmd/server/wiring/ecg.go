package wiring

import (
	"github.com/google/wire"

	"github.com/acme/postsvc/adapters/ecg/ecganalysis"
	"github.com/acme/postsvc/adapters/ecg/ecggorm"
	"github.com/acme/postsvc/adapters/ecg/ecghttp"
	"github.com/acme/postsvc/adapters/ecg/ecgspool"
	ecgapp "github.com/acme/postsvc/application/ecg"
	"github.com/acme/postsvc/config"
	ecgport "github.com/acme/postsvc/ports/ecg"
)

// ecgSet is the ECG context: its core and its HTTP module.
//
//nolint:unused // used by the wireinject injectors
var ecgSet = wire.NewSet(
	ecgCoreSet,
	ecgHTTPSettings,
	ecghttp.New,
)

// ecgCoreSet is what the ECG use case needs (the reanalyse command builds only this): its
// store, the upload spools and the registered analyses.
//
//nolint:unused // used by the wireinject injectors
var ecgCoreSet = wire.NewSet(
	ecggorm.NewStore,
	wire.Bind(new(ecgport.Store), new(ecggorm.Store)),
	ecgSpools,
	wire.Bind(new(ecgport.Spools), new(*ecgspool.Spools)),
	ecgAnalyses,
	ecgSettings,
	ecgapp.NewService,
	wire.Bind(new(ecgport.Service), new(*ecgapp.Service)),
)

// ecgAnalyses is the one list of analyses (ecganalysis.All), checked at start-up.
func ecgAnalyses() (ecgapp.Analyses, error) {
	as := ecgapp.Analyses(ecganalysis.All())
	return as, as.Validate()
}

func ecgSpools(cfg config.ECG) (*ecgspool.Spools, error) {
	return ecgspool.New(ecgspool.Settings{Memory: cfg.SpoolMemory, Dir: cfg.SpoolDir, Disk: cfg.SpoolDisk})
}

func ecgSettings(cfg config.ECG) ecgapp.Settings {
	return ecgapp.Settings{QuotaBytes: cfg.QuotaBytes}
}

func ecgHTTPSettings(cfg config.ECG) ecghttp.Settings {
	return ecghttp.Settings{MaxBodyBytes: cfg.MaxBodyBytes, StoreTimePerMiB: cfg.StoreTimePerMiB}
}
