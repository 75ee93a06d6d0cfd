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
