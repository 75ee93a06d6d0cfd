package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// BenchmarkLambdaParts splits the Lambda v2 path's own work (no Redis) into its parts,
// to show what is ours and what is api-proxy's: decoding the event envelope,
// api-proxy's event-to-request translation, and api-proxy's response writer with the
// response encoding. Each is run with the production codec and with encoding/json.
func BenchmarkLambdaParts(b *testing.B) {
	payload := readEvent(b, "getproduct.v2.json")
	codecs := []struct {
		name string
		c    interface {
			Marshal(any) ([]byte, error)
			Unmarshal([]byte, any) error
		}
	}{{"codec", app.Codec}, {"stdjson", stdJSON{}}}
	for _, c := range codecs {
		b.Run("Decode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var ev events.APIGatewayV2HTTPRequest
				if err := c.c.Unmarshal(payload, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := app.Codec.Unmarshal(payload, &ev); err != nil {
		b.Fatal(err)
	}
	b.Run("APIProxyRequest", func(b *testing.B) {
		var acc core.RequestAccessorV2
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := acc.EventToRequestWithContext(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	body := []byte(`{"id":"prod-0042","sku":"KIT-CB-4242","name":"Copperfield Signature Cold Brew Kettle","description":"` +
		"The Copperfield kettle keeps things simple for slow mornings. It is made from brushed stainless steel chosen to last for years. " +
		"A double wall keeps coffee cold for twelve hours and the outside dry. The fine mesh filter lifts out in one piece for cleaning." +
		`","price":{"amount":6450,"currency":"USD"},"stock":17,"category":"kitchen"}`)
	for _, c := range codecs {
		b.Run("APIProxyResponse+Encode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := core.NewProxyResponseWriterV2()
				h := w.Header()
				h["Content-Type"] = []string{"application/json; charset=utf-8"}
				h["X-Cache"] = []string{"HIT"}
				h["Etag"] = []string{`"2v72nyrmyenx3"`}
				h["Cache-Control"] = []string{"no-cache"}
				h["X-Request-Id"] = []string{"8f1e7c2a-4b3d-4e5f-9a6b-7c8d9e0f1a2b"}
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(body)
				resp, err := w.GetProxyResponse()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.c.Marshal(resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type stdJSON struct{}

func (stdJSON) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (stdJSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
