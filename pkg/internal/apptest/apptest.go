// Package apptest assembles the application for tests as the functions do.
package apptest

import (
	"testing"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/redisclient"
)

// Build parses environ for mode and returns the API that app.Build makes of it, on a
// lazy client of its own that is closed when the test ends. Any error fails the test.
func Build(tb testing.TB, environ map[string]string, mode config.Mode) *api.API {
	tb.Helper()
	cfg, err := config.Parse(environ, mode)
	if err != nil {
		tb.Fatal(err)
	}
	opts, err := redisclient.Options(cfg.Redis)
	if err != nil {
		tb.Fatal(err)
	}
	lazy := redisclient.NewLazy(opts)
	tb.Cleanup(func() { _ = lazy.Close() })
	a, err := app.Build(cfg, lazy)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}
