// Package apptest assembles the application for tests as the functions do.
package apptest

import (
	"testing"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
)

// Build parses environ for mode and returns the API of the App that app.New makes of
// it with opts, on a client of its own that is closed when the test ends. Any error
// fails the test.
//
// The end closes only the clients (the main one and the in-process tier's), not the whole App: App.Close would also write the
// test's pending figures to Redis, and the test's own cleanup, which runs first
// (cleanups run last-registered first), may already have deleted its keys.
func Build(tb testing.TB, environ map[string]string, mode config.Mode, opts ...app.Option) *api.API {
	tb.Helper()
	cfg, err := config.Parse(environ, mode)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := app.New(cfg, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = a.CloseL1()
		_ = a.Client.Close()
	})
	return a.API
}
