package app

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/logbuf"
)

func TestNewLoggerBuffersOnlyInHTTPMode(t *testing.T) {
	defer slog.SetDefault(slog.Default())
	for _, tc := range []struct {
		mode     config.Mode
		interval string
		buffered bool
	}{
		{config.ModeHTTP, "", true}, // the default, 100ms
		{config.ModeHTTP, "0", false},
		{config.ModeLambda, "1s", false},
	} {
		cfg, err := config.Parse(map[string]string{"LOG_FLUSH_INTERVAL": tc.interval}, tc.mode)
		if tc.interval == "" {
			cfg, err = config.Parse(map[string]string{}, tc.mode)
		}
		if err != nil {
			t.Fatal(err)
		}
		if tc.interval == "" && cfg.LogFlushInterval != 100*time.Millisecond {
			t.Errorf("default LOG_FLUSH_INTERVAL = %v, want 100ms", cfg.LogFlushInterval)
		}
		var out logbuf.Buffer
		logger, flush := NewLogger(&out, cfg)
		logger.Info("hello")
		written := strings.Contains(out.String(), `"message":"hello"`)
		if written == tc.buffered {
			t.Errorf("mode %v, LOG_FLUSH_INTERVAL %q: line written at once = %v, want %v", tc.mode, tc.interval, written, !tc.buffered)
		}
		if err := flush(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), `"message":"hello"`) {
			t.Errorf("mode %v: the line is missing after flush: %q", tc.mode, out.String())
		}
	}
}
