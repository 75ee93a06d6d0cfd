package tracing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/otlptest"
	"github.com/acmestore/storeapi/pkg/tracing"
)

// TestExportEnvironment: the exporter honours OTEL_EXPORTER_OTLP_HEADERS (values
// URL-decoded) and gzip compression, and the receiver decodes what it sends as an
// ExportTraceServiceRequest.
func TestExportEnvironment(t *testing.T) {
	rcv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k%201,x-team=store")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
	tr, err := tracing.New(context.Background(), config.Tracing{Endpoint: rcv.URL + "/", Exporter: "otlp"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Provider().Tracer("test").Start(context.Background(), "root")
	span.End()
	tr.Flush(context.Background())
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := rcv.Spans()
	if len(spans) != 1 || spans[0].Name != "root" || spans[0].Resource["service.name"] != "storeapi" {
		t.Fatalf("received %s", otlptest.Names(spans))
	}
	h := rcv.Header()
	if h.Get("X-Api-Key") != "k 1" || h.Get("X-Team") != "store" || h.Get("Content-Encoding") != "gzip" {
		t.Errorf("export headers: %v", h)
	}
}

// TestNewRefusesBadEnvironment: a malformed exporter variable stops start-up, and the
// error does not quote the headers (they hold API keys).
func TestNewRefusesBadEnvironment(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_HEADERS", "secret-without-equals"},
		{"OTEL_EXPORTER_OTLP_TIMEOUT", "soon"},
		{"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			_, err := tracing.New(context.Background(), config.Tracing{Endpoint: "http://127.0.0.1:4318", Exporter: "otlp"})
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), tc.value) {
				t.Errorf("error quotes the value: %v", err)
			}
		})
	}
	if _, err := tracing.New(context.Background(), config.Tracing{}); err == nil {
		t.Error("New without an endpoint: no error")
	}
}
