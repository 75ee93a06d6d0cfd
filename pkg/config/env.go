package config

import (
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"
)

// describe turns one error of caarlos0/env into "VAR: why", without the value: a parse
// error's message quotes the value, which may be a secret.
func describe(err error, keys map[string]string) string {
	var pe env.ParseError
	if errors.As(err, &pe) {
		key := keys[pe.Name]
		if key == "" {
			key = pe.Name
		}
		return key + ": " + kindOf(pe.Type)
	}
	var unset env.EnvVarIsNotSetError
	if errors.As(err, &unset) {
		return unset.Key + ": required"
	}
	var empty env.EmptyEnvVarError
	if errors.As(err, &empty) {
		return empty.Key + ": must not be empty"
	}
	return "invalid setting"
}

func kindOf(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "not a duration (e.g. 250ms, 5s, 10m)"
	case t == reflect.TypeFor[slog.Level]():
		return "not a log level (debug, info, warn, error)"
	case t.Kind() == reflect.Bool:
		return "not a boolean (true or false)"
	case t.Kind() == reflect.Int:
		return "not an integer"
	case t.Kind() == reflect.Float64:
		return "not a number"
	}
	return "not a valid " + t.String()
}

// fieldKeys maps each Go field name to its environment variable. caarlos0/env names
// only the field in a parse error, so field names are kept unique across the nested
// structs (TestVariablesAreUniqueAndComplete counts them).
func fieldKeys() map[string]string {
	keys := map[string]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			if tag := f.Tag.Get("env"); tag != "" && tag != "-" {
				keys[f.Name] = strings.Split(tag, ",")[0]
			} else if f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[Config]())
	return keys
}

// Variables lists every environment variable Config reads, sorted.
func Variables() []string {
	keys := fieldKeys()
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
