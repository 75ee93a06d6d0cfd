package product

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestCatalog returns the embedded catalog with the given latency.
func newTestCatalog(tb testing.TB, latency time.Duration) *Catalog {
	tb.Helper()
	c, err := NewCatalog(latency)
	if err != nil {
		tb.Fatalf("NewCatalog(%v): %v", latency, err)
	}
	return c
}

func TestCatalogProduct(t *testing.T) {
	c := newTestCatalog(t, 0)
	for _, id := range []string{"prod-0001", "prod-0500", "prod-1000"} {
		t.Run(id, func(t *testing.T) {
			p, err := c.Product(context.Background(), id)
			if err != nil {
				t.Fatalf("Product: %v", err)
			}
			if p.ID != id || p.Name == "" || p.SKU == "" || p.Price.Amount <= 0 || len(p.Images) == 0 {
				t.Fatalf("Product(%q) = %+v; want a complete product with that id", id, p)
			}
		})
	}
}

func TestCatalogErrors(t *testing.T) {
	c := newTestCatalog(t, 0)
	tests := []struct {
		name, id string
		want     error
	}{
		{"below range", "prod-0000", ErrNotFound},
		{"above range", "prod-1001", ErrNotFound},
		{"case differs", "PROD-0001", ErrNotFound},
		{"unpadded", "prod-1", ErrNotFound},
		{"empty", "", ErrInvalidID},
		{"traversal", "../prod-0001", ErrInvalidID},
		{"too long", strings.Repeat("x", 100), ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Product(context.Background(), tt.id)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Product(%q) error = %v; want %v", tt.id, err, tt.want)
			}
		})
	}
}

// TestCatalogFile checks every embedded product, and that product.Product and the
// generator's own struct encode to the same bytes: each line decodes with no unknown
// field and encodes back to itself.
func TestCatalogFile(t *testing.T) {
	t.Parallel()
	c := newTestCatalog(t, 0)
	ids := c.IDs()
	if len(ids) < 1000 || c.Len() != len(ids) {
		t.Fatalf("Len = %d, len(IDs) = %d; want at least 1000 of each", c.Len(), len(ids))
	}
	skus := make(map[string]bool)
	for i, id := range ids {
		raw := c.idx.byID[id]
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var p Product
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("%s: strict decode: %v", id, err)
		}
		again, err := json.Marshal(p)
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("%s: does not re-encode to the same bytes (err %v):\n got %s\nwant %s", id, err, again, raw)
		}
		switch {
		case i > 0 && ids[i-1] >= id:
			t.Errorf("%s: out of order after %s", id, ids[i-1])
		case len(raw) < 500 || len(raw) > 1500:
			t.Errorf("%s: %d bytes of JSON; want 0.5 to 1.5 kB", id, len(raw))
		case skus[p.SKU]:
			t.Errorf("%s: duplicate SKU %s", id, p.SKU)
		case p.Price.Amount <= 0 || p.Price.Currency != "USD" || p.Stock < 0:
			t.Errorf("%s: price %+v, stock %d", id, p.Price, p.Stock)
		case p.Name == "" || p.Description == "" || p.Category == "":
			t.Errorf("%s: missing name, description or category", id)
		case p.UpdatedAt.IsZero() || p.UpdatedAt.Location() != time.UTC:
			t.Errorf("%s: updatedAt %v; want a UTC time", id, p.UpdatedAt)
		}
		for _, img := range p.Images {
			if !strings.HasPrefix(img, "https://") {
				t.Errorf("%s: image %q is not an https URL", id, img)
			}
		}
		skus[p.SKU] = true
	}
}

func TestCatalogIDs(t *testing.T) {
	c := newTestCatalog(t, 0)
	ids := c.IDs()
	if ids[0] != "prod-0001" || ids[len(ids)-1] != "prod-1000" {
		t.Fatalf("IDs run from %s to %s; want prod-0001 to prod-1000", ids[0], ids[len(ids)-1])
	}
	ids[0] = "changed"
	if c.IDs()[0] != "prod-0001" {
		t.Fatal("changing the slice IDs returned changed the catalog")
	}
}

func TestCatalogReturnsCopies(t *testing.T) {
	c := newTestCatalog(t, 0)
	ctx := context.Background()
	p, err := c.Product(ctx, "prod-0002")
	if err != nil {
		t.Fatal(err)
	}
	p.Images[0] = "changed"
	q, err := c.Product(ctx, "prod-0002")
	if err != nil {
		t.Fatal(err)
	}
	if q.Images[0] == "changed" {
		t.Fatal("changing a returned product changed the catalog")
	}
}

func TestCatalogLatency(t *testing.T) {
	t.Parallel()
	const latency = 40 * time.Millisecond
	c := newTestCatalog(t, latency)
	tests := []struct {
		name string
		id   string
		want error
	}{
		{"found", "prod-0003", nil},
		{"not found", "prod-9999", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := c.Product(context.Background(), tt.id)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Product: %v; want %v", err, tt.want)
			}
			if d := time.Since(start); d < latency {
				t.Fatalf("Product took %v; want at least the latency, %v", d, latency)
			}
		})
	}
}

func TestCatalogLatencyCancelled(t *testing.T) {
	t.Parallel()
	c := newTestCatalog(t, time.Hour)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	tests := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"already cancelled", cancelled, context.Canceled},
		{"deadline during the wait", short, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := c.Product(tt.ctx, "prod-0001")
			if !errors.Is(err, tt.want) {
				t.Fatalf("Product: %v; want %v", err, tt.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Product returned after %v; want it to stop when ctx ends", d)
			}
		})
	}
}

func TestCatalogConcurrent(t *testing.T) {
	t.Parallel()
	c := newTestCatalog(t, 0)
	ids := c.IDs()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < len(ids); i += 8 {
				if p, err := c.Product(context.Background(), ids[i]); err != nil || p.ID != ids[i] {
					t.Errorf("Product(%q) = %q, %v", ids[i], p.ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewCatalogNegativeLatency(t *testing.T) {
	if _, err := NewCatalog(-time.Millisecond); err == nil {
		t.Fatal("NewCatalog accepted a negative latency")
	}
}

func TestIndexCatalogRejects(t *testing.T) {
	const p1 = `{"id":"p1","name":"x"}`
	tests := []struct{ name, data string }{
		{"empty", ""},
		{"not an array", p1 + "\n"},
		{"no closing bracket", "[\n" + p1 + "\n"},
		{"unterminated line", "[\n" + p1},
		{"id not first", "[\n" + `{"name":"x","id":"p1"}` + "\n]\n"},
		{"bad id", "[\n" + `{"id":"../p1"}` + "\n]\n"},
		{"unterminated id", "[\n" + `{"id":"p1}` + "\n]\n"},
		{"duplicate id", "[\n" + p1 + ",\n" + p1 + "\n]\n"},
		{"blank line", "[\n\n]\n"},
		{"data after array", "[\n" + p1 + "\n]\nextra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := indexCatalog([]byte(tt.data)); err == nil {
				t.Fatalf("indexCatalog accepted %q", tt.data)
			}
		})
	}
	idx, err := indexCatalog([]byte("[\n" + p1 + ",\n" + `{"id":"p2"}` + "\n]\n"))
	if err != nil || len(idx.ids) != 2 || string(idx.byID["p2"]) != `{"id":"p2"}` {
		t.Fatalf("indexCatalog on a good file = %+v, %v", idx, err)
	}
}

// BenchmarkIndexCatalog measures what NewCatalog costs the first time in a process,
// that is, during a cold start.
func BenchmarkIndexCatalog(b *testing.B) {
	for b.Loop() {
		if _, err := indexCatalog(catalogJSON); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCatalogProduct(b *testing.B) {
	c := newTestCatalog(b, 0)
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Product(ctx, "prod-0500"); err != nil {
			b.Fatal(err)
		}
	}
}
