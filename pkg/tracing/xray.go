package tracing

import (
	"encoding/hex"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// ParseXRay reads an AWS X-Ray trace header, such as Lambda's _X_AMZN_TRACE_ID or
// API Gateway's X-Amzn-Trace-Id: "Root=1-5759e988-bd862e3fe1be46a994272793;
// Parent=53995c3f42cd8ad8;Sampled=1", fields in any order, others (Lineage, Self)
// ignored. It returns the remote span context the request's span is a child of: the
// trace id is the Root's 8 + 24 hex digits, the parent the Parent's 16. Sampled=1
// marks it sampled, Sampled=0 not (the sampler, parent-based by default, then keeps
// that decision); without Sampled (or "?", a decision left to the receiver) it is
// marked sampled. ok is false when Root or Parent is missing or malformed.
func ParseXRay(h string) (sc trace.SpanContext, ok bool) {
	var tid trace.TraceID
	var sid trace.SpanID
	var haveRoot, haveParent bool
	sampled := true
	for h != "" {
		var field string
		field, h, _ = strings.Cut(h, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
		switch k {
		case "Root":
			// 1-<8 hex: epoch seconds>-<24 hex>
			if len(v) != 35 || v[0] != '1' || v[1] != '-' || v[10] != '-' {
				return sc, false
			}
			if !decodeHex(tid[:4], v[2:10]) || !decodeHex(tid[4:], v[11:]) {
				return sc, false
			}
			haveRoot = true
		case "Parent":
			if len(v) != 16 || !decodeHex(sid[:], v) {
				return sc, false
			}
			haveParent = true
		case "Sampled":
			sampled = v != "0"
		}
	}
	if !haveRoot || !haveParent || !tid.IsValid() || !sid.IsValid() {
		return sc, false
	}
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true,
	}), true
}

// decodeHex decodes s, lower- or upper-case hex of exactly 2×len(dst) digits, into dst.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// XRayTraceID formats a trace id the way X-Ray shows it: 1-<8 hex>-<24 hex>.
func XRayTraceID(id trace.TraceID) string {
	s := id.String()
	return "1-" + s[:8] + "-" + s[8:]
}
