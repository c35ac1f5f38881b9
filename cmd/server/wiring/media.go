package wiring

import (
	"log/slog"
	"time"

	"github.com/google/wire"

	"github.com/acme/postsvc/adapters/media/imaging"
	"github.com/acme/postsvc/adapters/media/mediagorm"
	"github.com/acme/postsvc/adapters/media/mediahttp"
	mediaapp "github.com/acme/postsvc/application/media"
	"github.com/acme/postsvc/config"
	mediaport "github.com/acme/postsvc/ports/media"
)

// mediaSet is the media context: its core and its HTTP module.
//
//nolint:unused // used by the wireinject injectors
var mediaSet = wire.NewSet(
	mediaCoreSet,
	mediaHTTPSettings,
	mediahttp.New,
)

// mediaCoreSet is what the media use case needs (the gc command builds only this and the
// object store): its store, the imaging adapter and its settings.
//
//nolint:unused // used by the wireinject injectors
var mediaCoreSet = wire.NewSet(
	mediagorm.NewStore,
	wire.Bind(new(mediaport.Store), new(mediagorm.Store)),
	mediaImaging,
	wire.Bind(new(mediaport.Imaging), new(*imaging.Imaging)),
	mediaSettings,
	mediaapp.NewService,
	wire.Bind(new(mediaport.Service), new(*mediaapp.Service)),
)

// mediaImaging is the imaging adapter; WebP files being cleaned (whose header is rewritten
// with the cleaned size) spill to the system's temporary folder past a small memory spool.
// Spools that a killed process left there over an hour ago are removed first.
func mediaImaging(logger *slog.Logger) *imaging.Imaging {
	if n, err := imaging.RemoveStaleTemps("", time.Hour); err != nil {
		logger.Warn("could not remove stale image spools", "err", err)
	} else if n > 0 {
		logger.Info("removed stale image spools", "count", n)
	}
	return imaging.New(imaging.Config{})
}

func mediaSettings(cfg config.Media) mediaapp.Settings {
	return mediaapp.Settings{QuotaBytes: cfg.QuotaBytes, SweepGrace: cfg.SweepGrace}
}

func mediaHTTPSettings(cfg config.Media) mediahttp.Settings {
	return mediahttp.Settings{
		MaxFileBytes: cfg.MaxFileBytes, MaxFiles: cfg.MaxFiles,
		MaxRequestBytes: cfg.MaxRequestBytes, UploadTimeout: cfg.UploadTimeout,
	}
}
