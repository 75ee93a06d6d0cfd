package app

import (
	"bytes"

	gojson "github.com/goccy/go-json"
)

// Codec is the JSON codec of the Lambda event envelope and response
// (serve.Options.Codec): goccy/go-json, which has encoding/json's semantics and, on the
// getProduct hit path, decodes the ~1 KB API Gateway event and encodes the response
// faster and with fewer allocations (see pkg/internal/bench). codec_test.go proves that
// it decodes every event in events/ and the serve fuzz corpus to the same request, and
// encodes the same response bytes, as encoding/json.
//
// Unmarshal decodes a private copy of the input with DecodeNoCopyString: the event's
// strings point into that copy instead of being allocated one by one (about 30
// allocations per event), and nothing refers to the caller's buffer, which
// aws-lambda-go reuses for the next invocation. The copy lives as long as any of the
// event's strings does.
var Codec codec

type codec struct{}

func (codec) Marshal(v any) ([]byte, error) { return gojson.Marshal(v) }

func (codec) Unmarshal(data []byte, v any) error {
	return gojson.UnmarshalWithOption(bytes.Clone(data), v, gojson.DecodeNoCopyString())
}
