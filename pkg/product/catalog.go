package product

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// catalogJSON is written by internal/gencatalog: a JSON array with one product per
// line, each line starting {"id":"<id>", which is what indexCatalog relies on.
//
//go:embed catalog.json
var catalogJSON []byte

// Catalog is the sample catalog embedded in the binary, a [Source] that stands in for
// the store's database. Its thousand products have ids prod-0001 to prod-1000.
//
// An optional latency is added to every lookup so that demos and load tests see what
// a cache saves over a real database. A Catalog is safe for concurrent use.
type Catalog struct {
	latency time.Duration
	idx     *catalogIndex
}

var _ Source = (*Catalog)(nil)

// catalogIndex locates each product's JSON inside catalogJSON.
type catalogIndex struct {
	ids  []string          // in file order
	byID map[string][]byte // slices of catalogJSON, never written to
}

// loadIndex builds the index once per process and shares it among Catalogs. It only
// scans lines (well under a millisecond) so that building a Catalog during a Lambda
// cold start is cheap; each product is decoded when it is looked up.
var loadIndex = sync.OnceValues(func() (*catalogIndex, error) {
	return indexCatalog(catalogJSON)
})

// NewCatalog returns the sample catalog, adding latency to every lookup (0 adds none).
// It fails only if latency is negative or the embedded file is malformed.
func NewCatalog(latency time.Duration) (*Catalog, error) {
	if latency < 0 {
		return nil, fmt.Errorf("product: catalog: negative latency %v", latency)
	}
	idx, err := loadIndex()
	if err != nil {
		return nil, err
	}
	return &Catalog{latency: latency, idx: idx}, nil
}

// Product returns the product with the given id, after the catalog's latency. It
// returns an error wrapping [ErrNotFound] for an unknown id, [ErrInvalidID] (at once)
// for an id [ParseID] rejects, and ctx's error if ctx ends first. Every call decodes a
// fresh Product, so the caller may modify it.
func (c *Catalog) Product(ctx context.Context, id string) (Product, error) {
	if _, err := ParseID(id); err != nil {
		return Product{}, err // already says why, and must not quote id
	}
	if err := c.wait(ctx); err != nil {
		return Product{}, fmt.Errorf("product: catalog: get %q: %w", id, err)
	}
	raw, ok := c.idx.byID[id]
	if !ok {
		return Product{}, fmt.Errorf("product: catalog: get %q: %w", id, ErrNotFound)
	}
	var p Product
	if err := json.Unmarshal(raw, &p); err != nil {
		return Product{}, fmt.Errorf("product: catalog: decode %q: %w", id, err)
	}
	return p, nil
}

// wait sleeps for the catalog's latency, like a database round trip would take, or
// until ctx ends. An unknown id pays it too: a database has to look before it knows.
func (c *Catalog) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.latency <= 0 {
		return nil
	}
	select {
	case <-time.After(c.latency):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// IDs returns the ids of all products in order, in a new slice the caller may keep,
// shuffle or trim.
func (c *Catalog) IDs() []string {
	return append([]string(nil), c.idx.ids...)
}

// Len returns the number of products.
func (c *Catalog) Len() int { return len(c.idx.ids) }

// indexCatalog maps each id in data, a file written by gencatalog, to its product's
// JSON, checking the layout the generator promises but not decoding the products.
func indexCatalog(data []byte) (*catalogIndex, error) {
	const idPrefix = `{"id":"`
	rest, ok := bytes.CutPrefix(data, []byte("[\n"))
	if !ok {
		return nil, errors.New("product: catalog.json: want a JSON array with one product per line")
	}
	idx := &catalogIndex{byID: make(map[string][]byte, 1024)}
	for n := 2; ; n++ {
		line, next, found := bytes.Cut(rest, []byte("\n"))
		if !found {
			return nil, fmt.Errorf("product: catalog.json: line %d: unterminated", n)
		}
		rest = next
		if string(line) == "]" {
			break
		}
		line = bytes.TrimSuffix(line, []byte(","))
		tail, ok := bytes.CutPrefix(line, []byte(idPrefix))
		if !ok || line[len(line)-1] != '}' {
			return nil, fmt.Errorf("product: catalog.json: line %d: want a product object starting with its id", n)
		}
		rawID, _, ok := bytes.Cut(tail, []byte(`"`))
		if !ok {
			return nil, fmt.Errorf("product: catalog.json: line %d: unterminated id", n)
		}
		id := string(rawID)
		if _, err := ParseID(id); err != nil {
			return nil, fmt.Errorf("product: catalog.json: line %d: %w", n, err)
		}
		if _, dup := idx.byID[id]; dup {
			return nil, fmt.Errorf("product: catalog.json: line %d: duplicate id %q", n, id)
		}
		// Capacity is clipped so that nothing appended to a slice could reach the
		// next product.
		idx.byID[id] = line[:len(line):len(line)]
		idx.ids = append(idx.ids, id)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("product: catalog.json: data after the closing bracket")
	}
	return idx, nil
}
