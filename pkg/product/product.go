// Package product is the store's product model and the sources products are read from.
//
// A [Source] is the one thing the cache layer needs from the store: look up a product
// by id. Two are provided. [Catalog] is a sample catalog of a thousand products
// embedded in the binary, standing in for the store's database in local runs, demos and
// load tests. [HTTPSource] reads products from another service over HTTP, for stores
// whose products live elsewhere. Nothing in this package knows about caching.
//
// Ids come from URLs, so they are untrusted: [ParseID] checks one before it is used as
// a key or sent anywhere, and its errors never repeat the input.
package product

import (
	"context"
	"errors"
	"fmt"
	"time"
)

//go:generate go run ./internal/gencatalog -o catalog.json

// Product is one item the store sells, as the API serves it.
type Product struct {
	// ID is the product's id, as accepted by [ParseID].
	ID string `json:"id"`
	// SKU is the stock keeping unit used by the warehouse.
	SKU string `json:"sku"`
	// Name is the display name.
	Name string `json:"name"`
	// Description is plain text, a few sentences long.
	Description string `json:"description"`
	// Price is the current selling price.
	Price Price `json:"price"`
	// Stock is the number of units available; 0 means out of stock.
	Stock int `json:"stock"`
	// Category is the category's slug, such as "kitchen".
	Category string `json:"category"`
	// Images are absolute URLs of the product's pictures, the main picture first.
	Images []string `json:"images"`
	// UpdatedAt is when the product last changed, in UTC; it is encoded as RFC 3339.
	UpdatedAt time.Time `json:"updatedAt"`
}

// Price is an amount of money in a currency's minor units, so that prices are exact:
// USD 19.99 is {Amount: 1999, Currency: "USD"}.
type Price struct {
	// Amount is in minor units (cents for USD; yen for JPY, which has none smaller).
	Amount int64 `json:"amount"`
	// Currency is the ISO 4217 code, such as "USD".
	Currency string `json:"currency"`
}

// ErrNotFound reports that no product has the requested id.
var ErrNotFound = errors.New("product: not found")

// Source looks products up by id. It is the small interface a store's database, or a
// client of another service, implements for the cache layer.
//
// Product returns the product with the given id, or an error wrapping [ErrNotFound]
// when there is none. It honours ctx's deadline and cancellation. Implementations are
// safe for concurrent use, and each call returns a product the caller may modify. The
// sources in this package also reject ids that [ParseID] rejects, with an error
// wrapping [ErrInvalidID] and without doing any I/O.
type Source interface {
	Product(ctx context.Context, id string) (Product, error)
}

// SourceFunc adapts a function to [Source], in the manner of http.HandlerFunc: handy
// for tests that count calls or inject faults.
type SourceFunc func(ctx context.Context, id string) (Product, error)

// Product calls f(ctx, id).
func (f SourceFunc) Product(ctx context.Context, id string) (Product, error) {
	return f(ctx, id)
}

// MaxIDLen is the longest id [ParseID] accepts, in bytes.
const MaxIDLen = 64

// ErrInvalidID reports an id that [ParseID] rejects.
var ErrInvalidID = errors.New("product: invalid id")

// The errors ParseID returns. Their reasons are fixed on purpose: the input may be
// hostile markup or kilobytes long, and must not travel on into logs or responses.
// Built once, they also make a rejection cost no allocation.
var (
	errEmptyID   = fmt.Errorf("%w: empty", ErrInvalidID)
	errLongID    = fmt.Errorf("%w: longer than %d bytes", ErrInvalidID, MaxIDLen)
	errBadIDByte = fmt.Errorf("%w: only letters A-Z and a-z, digits, '-' and '_' are allowed", ErrInvalidID)
)

// ParseID checks that s is a well-formed product id: 1 to [MaxIDLen] bytes of ASCII
// letters, digits, '-' and '_'. It returns s unchanged when it is, and otherwise an
// error wrapping [ErrInvalidID] that says why without repeating s.
//
// The rule keeps ids safe to put in Redis keys, URL paths and log lines as they are:
// no separators, no dot segments, no markup, no control bytes.
func ParseID(s string) (string, error) {
	if s == "" {
		return "", errEmptyID
	}
	if len(s) > MaxIDLen {
		return "", errLongID
	}
	for i := 0; i < len(s); i++ {
		if !idByte(s[i]) {
			return "", errBadIDByte
		}
	}
	return s, nil
}

func idByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
