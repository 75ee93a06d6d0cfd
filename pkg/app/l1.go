package app

import (
	"log/slog"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/redisclient"
)

// newL1 builds the in-process tier the configuration asks for, with its tracking
// client (built on first use, like the main one), and says at start-up, in one log
// line, whether it is on and why. A tier that is off still exists, to tell health why.
func newL1(cfg config.Config, main *redisclient.Lazy) (*cache.L1, *redisclient.Lazy) {
	on, why := cfg.L1Decision()
	if !on {
		slog.Default().Info("l1: off, L2 (Redis) only", slog.String("reason", why))
		return cache.L1Off(why), nil
	}
	l1 := cache.NewL1(cache.L1Options{
		MaxBytes: cfg.L1.L1MaxBytes,
		Bound:    cfg.L1.L1MaxStaleness,
		Strict:   cfg.Mode == config.ModeLambda,
		OnOff: func(reason string) {
			slog.Default().Warn("l1: off, L2 (Redis) only", slog.String("reason", reason))
		},
	})
	tracking, err := main.Tracking(l1.Store())
	if err != nil {
		slog.Default().Info("l1: off, L2 (Redis) only", slog.String("reason", err.Error()))
		return cache.L1Off(err.Error()), nil
	}
	l1.Attach(tracking)
	slog.Default().Info("l1: on", slog.String("reason", why), slog.Duration("maxStaleness", cfg.L1.L1MaxStaleness),
		slog.Int64("maxBytes", cfg.L1.L1MaxBytes), slog.Bool("barrierEveryRead", cfg.Mode == config.ModeLambda))
	return l1, tracking
}

// CloseL1 stops the in-process tier's ticker and closes its tracking client; Close
// does it too. For tests that close the App's parts one by one.
func (a *App) CloseL1() error { return a.closeL1() }

func (a *App) closeL1() error {
	a.l1.Close()
	if a.tracking != nil {
		return a.tracking.Close()
	}
	return nil
}
