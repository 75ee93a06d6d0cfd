package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acmestore/storeapi/pkg/product"
)

// errSourceDown is what the tool's source answers while -source-down is in force.
var errSourceDown = errors.New("load: the product source is down (-source-down)")

// countingSource is the product source of the lambda mode's environments: the
// catalog (with PRODUCT_SOURCE_LATENCY), counted, and failing every read from
// downFrom to downUntil after the timed run starts, to show what stale-if-error
// serves while the store's database is down.
type countingSource struct {
	src                 product.Source
	downFrom, downUntil time.Duration

	start    atomic.Int64 // unix nanoseconds when the timed run started; 0 before
	reads    atomic.Int64 // every read, failed or not
	failures atomic.Int64
	// failed counts the failed reads of each id (*atomic.Int64 by id).
	failed sync.Map
}

func (s *countingSource) Product(ctx context.Context, id string) (product.Product, error) {
	s.reads.Add(1)
	if start := s.start.Load(); start != 0 && s.downUntil > s.downFrom {
		el := time.Duration(time.Now().UnixNano() - start)
		if el >= s.downFrom && el < s.downUntil {
			s.failures.Add(1)
			n, _ := s.failed.LoadOrStore(id, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			return product.Product{}, errSourceDown
		}
	}
	return s.src.Product(ctx, id)
}

// failedPerID returns how many ids had failed reads and the most any one had.
func (s *countingSource) failedPerID() (ids int, most int64) {
	s.failed.Range(func(_, v any) bool {
		ids++
		most = max(most, v.(*atomic.Int64).Load())
		return true
	})
	return ids, most
}
