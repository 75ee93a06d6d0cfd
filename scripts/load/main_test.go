package main

import (
	"io"
	"testing"
)

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-c", "0"},
		{"-n", "0", "-d", "0"},
		{"-d", "11m"},
		{"-hit-ratio", "2"},
		{"-rate", "-1", "-n", "1"},
		{"-rate", "NaN", "-n", "1"},
		{"-rate", "0.5", "-c", "64", "-n", "1"},
		{"-keys", "normal"},
		{"-source-down-for", "1s", "-mode", "http", "-n", "1"},
		{"-source-down-after", "-1s", "-n", "1"},
		{"-mode", "http", "-url", "http://example.com:3000", "-n", "1"},
	} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestMergeAddsEveryCount: rounds of one target add up, outcome by outcome.
func TestMergeAddsEveryCount(t *testing.T) {
	r := result{Seconds: 1, Hits: 5, L1Hits: 3, Misses: 1, Bypass: 2, Stale: 4, Other: 1, Sets: 2, Errors: 1}
	m := merge([]result{r, r})
	want := result{Seconds: 2, Hits: 10, L1Hits: 6, Misses: 2, Bypass: 4, Stale: 8, Other: 2, Sets: 4, Errors: 2}
	if m.Seconds != want.Seconds || m.Hits != want.Hits || m.L1Hits != want.L1Hits || m.Misses != want.Misses ||
		m.Bypass != want.Bypass || m.Stale != want.Stale || m.Other != want.Other || m.Sets != want.Sets || m.Errors != want.Errors {
		t.Fatalf("merge = %+v, want %+v", m, want)
	}
}
