package main

import (
	"context"
	"time"
)

// sweepMedia removes stored objects that no image refers to (left by uploads that failed or
// died half way): once at start, then every APP_MEDIA_SWEEP_INTERVAL, until ctx is done. A
// failed sweep is logged and tried again at the next interval; it never stops the service.
func (a *app) sweepMedia(ctx context.Context) error {
	t := time.NewTicker(a.cfg.Media.SweepInterval)
	defer t.Stop()
	for {
		start := time.Now()
		n, err := a.srv.Media.Sweep(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			a.logger.Warn("media sweep failed; trying again at the next interval", "err", err, "removed", n)
		case n > 0:
			a.logger.Info("media sweep removed orphaned objects", "removed", n, "took", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
