package config

import (
	"fmt"
	"log/slog"
)

// Secret is a string that never prints: String, GoString, fmt verbs, JSON, text and
// slog all show "[redacted]" (or "" when empty). Use string(s) where the value is needed.
type Secret string

const redacted = "[redacted]"

func (s Secret) show() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String returns "[redacted]" for a set secret.
func (s Secret) String() string { return s.show() }

// GoString returns "[redacted]" for a set secret, so %#v does not leak it either.
func (s Secret) GoString() string { return `"` + s.show() + `"` }

// Format makes every fmt verb print the redacted form (%x and %q included).
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.show())) }

// LogValue keeps the secret out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.show()) }

// MarshalText keeps the secret out of JSON and other encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.show()), nil }
