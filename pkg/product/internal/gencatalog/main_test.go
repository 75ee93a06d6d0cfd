package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCatalogUpToDate regenerates the catalog and compares it with the committed file,
// so an edit to the generator or its word lists cannot ship without the file, and a
// generator that stopped being deterministic is caught.
func TestCatalogUpToDate(t *testing.T) {
	first, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	second, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatal("two runs of the generator differ; it must be deterministic")
	}
	path := filepath.Join("..", "..", "catalog.json")
	committed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, committed) {
		t.Fatalf("%s is out of date: run go generate ./pkg/product", path)
	}
}
