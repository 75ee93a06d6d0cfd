package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// otlpClient posts spans to an OTLP/HTTP collector as protobuf: an otlptrace.Client,
// so the SDK's own exporter (otlptrace) converts the spans. It stands in for
// otlptracehttp, whose request type comes from the collector package and brings
// gRPC and grpc-gateway into the binary: their package initialisation alone cost
// every cold start, traced or not, about a millisecond (README, Performance).
//
// It reads, as otlptracehttp does, OTEL_EXPORTER_OTLP_[TRACES_]HEADERS,
// _TIMEOUT and _COMPRESSION (gzip or none). It does not retry: under Lambda the
// flush is bounded anyway, and in the HTTP mode the next batch follows.
type otlpClient struct {
	url      string
	headers  map[string]string
	timeout  time.Duration
	compress bool
	client   *http.Client
}

// newOTLPClient returns a client for traces sent to url, configured from the
// environment.
func newOTLPClient(url string) (*otlpClient, error) {
	c := &otlpClient{url: url, timeout: 10 * time.Second, client: &http.Client{}}
	if v := otlpEnv("HEADERS"); v != "" {
		h, err := parseHeaders(v)
		if err != nil {
			return nil, err
		}
		c.headers = h
	}
	if v := otlpEnv("TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_TIMEOUT: want a positive number of milliseconds")
		}
		c.timeout = time.Duration(ms) * time.Millisecond
	}
	switch v := otlpEnv("COMPRESSION"); v {
	case "", "none":
	case "gzip":
		c.compress = true
	default:
		return nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_COMPRESSION: want gzip or none")
	}
	return c, nil
}

// otlpEnv reads OTEL_EXPORTER_OTLP_TRACES_<name>, else OTEL_EXPORTER_OTLP_<name>.
func otlpEnv(name string) string {
	if v := strings.TrimSpace(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_" + name)); v != "" {
		return v
	}
	return strings.TrimSpace(os.Getenv("OTEL_EXPORTER_OTLP_" + name))
}

// parseHeaders reads the W3C-baggage-like list "key=value,key2=value2", values
// URL-encoded. The error never quotes the list: it usually holds an API key.
func parseHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_HEADERS: want key=value pairs separated by commas")
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_HEADERS: a value is not URL-encoded")
		}
		h[k] = dv
	}
	return h, nil
}

func (c *otlpClient) Start(context.Context) error { return nil }

func (c *otlpClient) Stop(context.Context) error {
	c.client.CloseIdleConnections()
	return nil
}

// UploadTraces posts one ExportTraceServiceRequest. Its only field is the repeated
// resource_spans (1), so the request is the resource spans' encodings, each framed as
// that field: the same bytes proto.Marshal of the request type would give.
func (c *otlpClient) UploadTraces(ctx context.Context, rs []*tracepb.ResourceSpans) error {
	var body []byte
	for _, r := range rs {
		b, err := proto.Marshal(r)
		if err != nil {
			return fmt.Errorf("tracing: encode spans: %w", err)
		}
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendBytes(body, b)
	}
	if c.compress {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		if err := zw.Close(); err != nil {
			return fmt.Errorf("tracing: gzip spans: %w", err)
		}
		body = buf.Bytes()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("tracing: export request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if c.compress {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		// The error names the URL; an endpoint with credentials in it is the
		// operator's choice, and the line goes to the operator's log only.
		return fmt.Errorf("tracing: export: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("tracing: export: the collector answered %d", resp.StatusCode)
	}
	return nil
}
