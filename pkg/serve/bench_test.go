package serve

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// productJSON is a product document of about 1 KB, as getProduct serves it.
var productJSON = []byte(`{"id":"42","sku":"MUG-0042-BLU","name":"Enamel camping mug, 350 ml","slug":"enamel-camping-mug-350ml","description":"A light, chip-resistant enamel mug with a stainless rim. Holds 350 ml, stacks neatly, and goes on an open flame. Hand wash recommended to keep the glaze bright for years of mornings outdoors.","brand":"Northwind Outfitters","category":{"id":"kitchen","name":"Camp kitchen","path":["outdoor","camp-kitchen","mugs"]},"price":{"amount":1499,"currency":"EUR","compareAt":1899},"stock":{"available":118,"warehouse":"DUB-1","restockDays":0},"attributes":{"color":"blue","material":"enamel on steel","capacityMl":350,"weightG":190,"dishwasherSafe":false},"images":[{"url":"https://cdn.example.com/p/42/1.jpg","alt":"Blue enamel mug, front","w":1200,"h":1200},{"url":"https://cdn.example.com/p/42/2.jpg","alt":"Mug on a camp stove","w":1200,"h":800}],"rating":{"average":4.7,"count":312},"tags":["camping","enamel","mug","gift"],"updatedAt":"2026-03-01T09:30:00Z","version":7}`)

// productHandler is the stub handler of the adapter benchmarks: it writes productJSON
// with the headers of a cache hit, and does nothing else (no Redis, no request line).
var productHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Cache"] = []string{"HIT"}
	_, _ = w.Write(productJSON)
})

func benchmarkAdapter(b *testing.B, file string) {
	payload := readEvent(b, file)
	l := NewLambda(productHandler, quietOptions())
	// The runtime's context: a deadline and the Lambda context.
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "8f1e7c2a-4b3d-4e5f-9a6b-7c8d9e0f1a2b"})
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()

	out, err := l.Invoke(ctx, payload)
	if err != nil || !bytes.Contains(out, []byte(`"statusCode":200`)) {
		b.Fatalf("%v: %s", err, out)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Invoke(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdapterV2 measures the Lambda adapter alone on an HTTP API payload 2.0
// event: raw event bytes in, response JSON bytes out, with the default codec
// (encoding/json) around productHandler. It leaves out what production adds: the
// faster codec (app.Codec), the telemetry middleware and the real handler on Redis:
// pkg/internal/bench drives that production path (BenchmarkAlone and BenchmarkPaired,
// paths LambdaV2 and LambdaV1).
func BenchmarkAdapterV2(b *testing.B) { benchmarkAdapter(b, "httpapi-v2.json") }

// BenchmarkAdapterV1 is the same for a REST API proxy event.
func BenchmarkAdapterV1(b *testing.B) { benchmarkAdapter(b, "rest-v1.json") }

func BenchmarkKindOf(b *testing.B) {
	for _, file := range []string{"httpapi-v2.json", "rest-v1.json"} {
		b.Run(file, func(b *testing.B) {
			payload := readEvent(b, file)
			b.ReportAllocs()
			for b.Loop() {
				kindOf(payload)
			}
		})
	}
}
