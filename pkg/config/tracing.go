package config

import (
	"net/url"
	"strings"
)

// Tracing turns OpenTelemetry tracing on. It is off unless an OTLP endpoint is named:
// a function deployed without one links the SDK but never starts it, so no span is
// made, no goroutine runs and nothing is sent. The exporter reads the other standard
// variables itself (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, ...), as do
// the sampler (OTEL_TRACES_SAMPLER, default parentbased_always_on: a caller's or
// Lambda's sampling decision is kept) and the resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES).
type Tracing struct {
	// Endpoint is the OTLP/HTTP collector's base URL; spans are sent to its
	// /v1/traces path. Under Lambda with the ADOT layer (or any collector extension)
	// it is the extension's local endpoint, http://localhost:4318.
	//
	// env: OTEL_EXPORTER_OTLP_ENDPOINT; default: none (tracing off unless
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set)
	Endpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`

	// TracesEndpoint is the full URL spans are sent to, taking precedence over
	// Endpoint.
	//
	// env: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; default: none
	TracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`

	// Exporter names the span exporter; "none" turns tracing off whatever the
	// endpoints say. Only otlp (over HTTP/protobuf) is built in.
	//
	// env: OTEL_TRACES_EXPORTER; default: otlp
	Exporter string `env:"OTEL_TRACES_EXPORTER" envDefault:"otlp"`

	// SDKDisabled turns tracing off whatever else is set, as the OpenTelemetry
	// specification defines it for every SDK.
	//
	// env: OTEL_SDK_DISABLED; default: false
	SDKDisabled bool `env:"OTEL_SDK_DISABLED"`
}

// Enabled reports whether spans are to be made and sent: an endpoint is named, the
// exporter is not "none" and the SDK is not disabled.
func (t Tracing) Enabled() bool {
	if t.SDKDisabled || strings.EqualFold(strings.TrimSpace(t.Exporter), "none") {
		return false
	}
	return t.TracesURL() != ""
}

// TracesURL is the URL spans are sent to: TracesEndpoint, else Endpoint with
// /v1/traces appended, else "".
func (t Tracing) TracesURL() string {
	if u := strings.TrimSpace(t.TracesEndpoint); u != "" {
		return u
	}
	if u := strings.TrimSpace(t.Endpoint); u != "" {
		return strings.TrimRight(u, "/") + "/v1/traces"
	}
	return ""
}

// validateTracing names the endpoint variable whose URL the exporter could not use,
// without quoting it (it may carry credentials).
func (c *Config) validateTracing() []string {
	t := c.Tracing
	if !t.Enabled() {
		return nil
	}
	name := "OTEL_EXPORTER_OTLP_ENDPOINT"
	if strings.TrimSpace(t.TracesEndpoint) != "" {
		name = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	}
	u, err := url.Parse(t.TracesURL())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return []string{name + ": want an absolute http:// or https:// URL (OTLP over HTTP)"}
	}
	return nil
}
