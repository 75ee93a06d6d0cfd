package product

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  error // nil: accepted
	}{
		{"catalog id", "prod-0001", nil},
		{"one byte", "a", nil},
		{"all classes", "AZaz09-_", nil},
		{"64 bytes", strings.Repeat("x", 64), nil},
		{"empty", "", errEmptyID},
		{"65 bytes", strings.Repeat("x", 65), errLongID},
		{"10 kB", strings.Repeat("A", 10<<10), errLongID},
		{"traversal", "../../etc", errBadIDByte},
		{"slash", "prod/0001", errBadIDByte},
		{"dot", "prod.0001", errBadIDByte},
		{"space", "prod 0001", errBadIDByte},
		{"NUL", "prod\x000001", errBadIDByte},
		{"newline", "prod-0001\n", errBadIDByte},
		{"markup", "<script>alert(1)</script>", errBadIDByte},
		{"unicode letter", "prodé", errBadIDByte},
		{"fullwidth digit", "prod-０", errBadIDByte},
		{"invalid UTF-8", "prod\xff", errBadIDByte},
		{"redis glob", "prod-*", errBadIDByte},
		{"percent escape", "prod%2F1", errBadIDByte},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseID(tt.in)
			if tt.wantErr == nil {
				if err != nil || got != tt.in {
					t.Fatalf("ParseID = %q, %v; want the input back", got, err)
				}
				return
			}
			if err != tt.wantErr || !errors.Is(err, ErrInvalidID) || got != "" {
				t.Fatalf("ParseID = %q, %v; want \"\", %v", got, err, tt.wantErr)
			}
			if len(tt.in) > 2 && strings.Contains(err.Error(), tt.in) {
				t.Fatalf("error %q repeats the input", err)
			}
		})
	}
}

func TestParseIDDoesNotAllocate(t *testing.T) {
	long := strings.Repeat("<", 10<<10)
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseID(long); _, _ = ParseID("prod-0001") }); n != 0 {
		t.Fatalf("ParseID allocates %v times per call; a flood of bad ids should cost nothing", n)
	}
}

// validID is the id rule restated independently of ParseID's loop, as the fuzz oracle.
var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func FuzzParseID(f *testing.F) {
	// More seeds, the hostile ones, are in testdata/fuzz/FuzzParseID.
	f.Add("prod-0001")
	f.Add(strings.Repeat("z", 64))
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseID(in)
		if err == nil {
			if got != in {
				t.Fatalf("ParseID(%q) = %q; want the input back", in, got)
			}
			if !validID.MatchString(got) {
				t.Fatalf("ParseID accepted %q", in)
			}
			return
		}
		if got != "" || !errors.Is(err, ErrInvalidID) {
			t.Fatalf("ParseID(%q) = %q, %v; want \"\" and ErrInvalidID", in, got, err)
		}
		if validID.MatchString(in) {
			t.Fatalf("ParseID rejected %q, a valid id: %v", in, err)
		}
		// The message must be one of the fixed ones: that, not a substring check
		// (short inputs occur in any message), proves the input is never echoed.
		if err != errEmptyID && err != errLongID && err != errBadIDByte {
			t.Fatalf("ParseID(%q) returned an unexpected error %q", in, err)
		}
	})
}

func TestSourceFunc(t *testing.T) {
	var s Source = SourceFunc(func(_ context.Context, id string) (Product, error) {
		return Product{ID: id}, nil
	})
	p, err := s.Product(context.Background(), "prod-7")
	if err != nil || p.ID != "prod-7" {
		t.Fatalf("Product = %+v, %v", p, err)
	}
}
