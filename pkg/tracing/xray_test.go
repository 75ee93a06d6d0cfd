package tracing_test

import (
	"testing"

	"github.com/acmestore/storeapi/pkg/tracing"
)

func TestParseXRay(t *testing.T) {
	for _, tc := range []struct {
		name, header    string
		ok, sampled     bool
		traceID, spanID string
	}{
		{"lambda", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", true, true, "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8"},
		{"not sampled", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0", true, false, "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8"},
		{"order, lineage, spaces", "Sampled=1; Lineage=10:1234abcd:3;Parent=53995C3F42CD8AD8;Root=1-5759e988-bd862e3fe1be46a994272793", true, true, "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8"},
		{"deferred", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?", true, true, "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8"},
		{"no parent (API Gateway's own)", "Root=1-6925fa13-4b8e2c1d9a7f3e5b6c0d1a2f", false, false, "", ""},
		{"no root", "Parent=53995c3f42cd8ad8;Sampled=1", false, false, "", ""},
		{"bad version", "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", false, false, "", ""},
		{"short root", "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8", false, false, "", ""},
		{"not hex", "Root=1-5759e988-bd862e3fe1be46a99427279z;Parent=53995c3f42cd8ad8", false, false, "", ""},
		{"zero parent", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000", false, false, "", ""},
		{"empty", "", false, false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, ok := tracing.ParseXRay(tc.header)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if sc.TraceID().String() != tc.traceID || sc.SpanID().String() != tc.spanID || sc.IsSampled() != tc.sampled || !sc.IsRemote() {
				t.Errorf("got trace %s span %s sampled %v remote %v", sc.TraceID(), sc.SpanID(), sc.IsSampled(), sc.IsRemote())
			}
			if got := tracing.XRayTraceID(sc.TraceID()); got != "1-"+tc.traceID[:8]+"-"+tc.traceID[8:] {
				t.Errorf("XRayTraceID = %s", got)
			}
		})
	}
}
