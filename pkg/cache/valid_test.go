package cache

import (
	"encoding/json"
	"strings"
	"testing"
)

var validCases = []string{
	``, ` `, `{}`, `[]`, ` { } `, `{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `[1,]`, `[,1]`, `[1 2]`,
	`"x"`, `"`, `"\"`, `"\\"`, `"\/\b\f\n\r\t"`, `"\u00e9\uD83D\uDE00"`, `"\u12"`, `"\u12g4"`, `"\x"`,
	"\"tab\there\"", "\"nl\nhere\"", "\"\x1f\"", "\"\x7f\"", "\"\xff\xfe\"", "\"\u2028\"",
	`0`, `-0`, `01`, `-`, `1.`, `.5`, `1.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e10`, `+1`, `1.5.5`,
	`true`, `false`, `null`, `tru`, `truex`, `nul`, `True`, `[true,false,null]`,
	`{"a":[1,{"b":null}],"c":"d"}`, `{"a":[1,{"b":null}],"c":"d"`, `{"a":[1,{"b":null]],"c":"d"}`,
	"\t\r\n[1]\n", "[1]\x00", "\v1", `1 2`, `{"a":1}{}`, `{"":""}`,
}

// TestValidJSONMatchesEncodingJSON covers every branch of the validator, and the
// nesting limit at both sides.
func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	cases := append([]string{}, validCases...)
	for _, d := range []int{maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		cases = append(cases,
			strings.Repeat("[", d)+strings.Repeat("]", d),
			strings.Repeat(`{"a":`, d)+"1"+strings.Repeat("}", d))
	}
	for _, c := range cases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.40q) = %v, encoding/json says %v", c, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Add([]byte(`{"id":"prod-0042","price":{"amount":6450,"currency":"USD"},"images":["https://x/y.jpg"],"stock":17}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Errorf("validJSON(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	doc := []byte(`{"id":"prod-0042","sku":"KIT-CB-4242","name":"Copperfield Signature Cold Brew Kettle","description":"` +
		strings.Repeat("The Copperfield kettle keeps things simple for slow mornings. ", 6) +
		`","price":{"amount":6450,"currency":"USD"},"stock":17,"category":"kitchen","images":["https://img.example/prod-0042/1.jpg","https://img.example/prod-0042/2.jpg"],"updatedAt":"2026-01-02T03:04:05Z"}`)
	b.Run("validJSON", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			validJSON(doc)
		}
	})
	b.Run("encoding/json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			json.Valid(doc)
		}
	})
}
