package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/serve"
	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// codecPayloads returns every event in events/ and pkg/serve/testdata/events, and every
// file of the FuzzInvoke seed corpus, by name.
func codecPayloads(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, pattern := range []string{"../../events/*.json", "../serve/testdata/events/*.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v (%d files)", pattern, err, len(files))
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = b
		}
	}
	files, err := filepath.Glob("../serve/testdata/fuzz/FuzzInvoke/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("fuzz corpus: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The corpus format: a header line, then []byte("…") as a Go literal.
		_, lit, ok := bytes.Cut(b, []byte("\n"))
		lit = bytes.TrimSpace(lit)
		if !ok || !bytes.HasPrefix(lit, []byte("[]byte(")) || !bytes.HasSuffix(lit, []byte(")")) {
			t.Fatalf("%s: not a []byte corpus entry", f)
		}
		s, err := strconv.Unquote(string(lit[len("[]byte(") : len(lit)-1]))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = []byte(s)
	}
	return out
}

type stdJSON struct{}

func (stdJSON) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (stdJSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// TestCodecDecodesLikeEncodingJSON: each payload decodes to the same event structs, or
// fails to decode, with both codecs.
func TestCodecDecodesLikeEncodingJSON(t *testing.T) {
	for name, payload := range codecPayloads(t) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			for _, newEvent := range []func() any{
				func() any { return new(events.APIGatewayV2HTTPRequest) },
				func() any { return new(events.APIGatewayProxyRequest) },
			} {
				want, got := newEvent(), newEvent()
				errStd := json.Unmarshal(payload, want)
				errGo := Codec.Unmarshal(payload, got)
				if (errStd == nil) != (errGo == nil) {
					t.Fatalf("%T: encoding/json error %v, codec error %v", want, errStd, errGo)
				}
				if errStd == nil && !reflect.DeepEqual(want, got) {
					t.Errorf("%T differs:\nencoding/json %+v\ncodec         %+v", want, want, got)
				}
			}
		})
	}
}

// TestCodecInvokesLikeEncodingJSON drives the whole Lambda path with each codec over
// every payload: a handler that writes back everything it was given (method, URL,
// host, remote address, headers, body, the API Gateway context) must see the same
// request, and the response bytes must be identical.
func TestCodecInvokesLikeEncodingJSON(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b strings.Builder
		// api-proxy builds a REST event's query from a map, in random order: the query
		// is written sorted (url.Values.Encode).
		u := *r.URL
		u.RawQuery = ""
		fmt.Fprintf(&b, "%s %s query=%s host=%q remote=%q len=%d proto=%s\n", r.Method, u.String(), r.URL.Query().Encode(), r.Host, r.RemoteAddr, r.ContentLength, r.Proto)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %q\n", k, r.Header[k])
		}
		if c, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok {
			fmt.Fprintf(&b, "v2ctx %#v\n", c)
		}
		if c, ok := core.GetAPIGatewayContextFromContext(r.Context()); ok {
			fmt.Fprintf(&b, "v1ctx %#v\n", c)
		}
		if v, ok := core.GetStageVarsFromContext(r.Context()); ok {
			fmt.Fprintf(&b, "stagevars %#v\n", v)
		}
		fmt.Fprintf(&b, "body %q\n", body)
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=<2>&")
		h.Set("X-Html", `<script>"&'</script>`)
		_, _ = io.WriteString(w, b.String())
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// api-proxy reports unconvertible events with the standard logger.
	log.SetOutput(io.Discard)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	ctx := context.Background()
	for name, payload := range codecPayloads(t) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			// A fresh Lambda per payload and codec, so both see the same cold start.
			std := serve.NewLambda(echo, serve.Options{Name: "t", Logger: quiet, Codec: stdJSON{}})
			fast := serve.NewLambda(echo, serve.Options{Name: "t", Logger: quiet, Codec: Codec})
			want, errStd := std.Invoke(ctx, payload)
			got, errGo := fast.Invoke(ctx, payload)
			if (errStd == nil) != (errGo == nil) {
				t.Fatalf("encoding/json error %v, codec error %v", errStd, errGo)
			}
			// The request id is generated when the event has none.
			want, got = dropRequestID(want), dropRequestID(got)
			if !bytes.Equal(want, got) {
				t.Errorf("responses differ:\nencoding/json %s\ncodec         %s", want, got)
			}
		})
	}
}

// generatedID matches the request id serve generates for an event without one
// (crypto/rand.Text: 26 base32 characters).
var generatedID = regexp.MustCompile(`([^A-Za-z0-9])[A-Z2-7]{26}([^A-Za-z0-9])`)

func dropRequestID(b []byte) []byte {
	return generatedID.ReplaceAll(b, []byte(`${1}generated${2}`))
}

// TestCodecDoesNotAliasInput: the runtime reuses its buffer for the next event, so a
// decoded event must not change when the input is overwritten.
func TestCodecDoesNotAliasInput(t *testing.T) {
	for name, payload := range codecPayloads(t) {
		var want events.APIGatewayV2HTTPRequest
		if json.Unmarshal(payload, &want) != nil {
			continue
		}
		buf := bytes.Clone(payload)
		var got events.APIGatewayV2HTTPRequest
		if err := Codec.Unmarshal(buf, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := range buf {
			buf[i] = 'x'
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s: the decoded event changed with its input:\n%+v\n%+v", name, want, got)
		}
	}
}
