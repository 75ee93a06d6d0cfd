// Command gencatalog writes the sample product catalog that package product embeds: a
// thousand made-up but store-like products, byte for byte the same on every run.
//
// It is run by go generate in pkg/product:
//
//	go generate ./pkg/product
//
// The output is a JSON array with one product per line, in id order, each line starting
// with its id. That keeps diffs readable and lets package product index the file by
// scanning lines instead of decoding a megabyte of JSON during a Lambda cold start.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

const (
	// count is how many products the catalog holds; ids are prod-0001 to prod-1000.
	count = 1000
	// seed fixes the catalog. Changing it rewrites every product.
	seed = 20250301
)

// record mirrors product.Product field for field. It is declared here rather than
// imported so the generator still builds when catalog.json is missing or broken (the
// product package does not compile without it); product's tests prove that both
// shapes encode to the same bytes.
type record struct {
	ID          string    `json:"id"`
	SKU         string    `json:"sku"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       price     `json:"price"`
	Stock       int       `json:"stock"`
	Category    string    `json:"category"`
	Images      []string  `json:"images"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

type price struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func main() {
	out := flag.String("o", "catalog.json", "file to write")
	flag.Parse()
	data, err := generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencatalog:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gencatalog:", err)
		os.Exit(1)
	}
}

// generate returns the catalog file's contents.
func generate() ([]byte, error) {
	r := &rng{state: seed}
	var buf bytes.Buffer
	buf.WriteString("[\n")
	for i := 1; i <= count; i++ {
		line, err := json.Marshal(makeProduct(r, i))
		if err != nil {
			return nil, fmt.Errorf("gencatalog: product %d: %w", i, err)
		}
		buf.Write(line)
		if i < count {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("]\n")
	return buf.Bytes(), nil
}

// updatedBase is the earliest updatedAt; products spread over the following months.
var updatedBase = time.Date(2025, time.March, 1, 0, 0, 0, 0, time.UTC)

func makeProduct(r *rng, i int) record {
	id := fmt.Sprintf("prod-%04d", i)
	cat := pick(r, categories)
	b := pick(r, brands)
	adj := pick(r, adjectives)
	noun := pick(r, cat.nouns)
	material := pick(r, cat.materials)

	name := b.name + " " + adj + " " + noun
	if r.intn(2) == 0 {
		name = b.name + " " + adj + " " + titleCase(material) + " " + noun
	}
	if cat.colors && r.intn(10) < 6 {
		name += ", " + pick(r, colors)
	}

	dollars := cat.minDollars + int64(r.intn(int(cat.maxDollars-cat.minDollars+1)))
	amount := dollars*100 + pick(r, []int64{99, 99, 95, 50, 0})

	stock := 1 + r.intn(240)
	switch n := r.intn(100); {
	case n < 6:
		stock = 0
	case n < 15:
		stock = 1 + r.intn(5)
	}

	views := append([]string{"front"}, shuffled(r, extraViews)[:1+r.intn(3)]...)
	images := make([]string, len(views))
	for j, v := range views {
		images[j] = fmt.Sprintf("https://images.acmestore.example/products/%s/%s.jpg", id, v)
	}

	return record{
		ID: id,
		// The multiplier is coprime to 9000, so the four-digit part is unique for
		// every id without looking sequential.
		SKU:         fmt.Sprintf("%s-%s-%04d", cat.code, b.code, 1000+(i*7919)%9000),
		Name:        name,
		Description: describe(r, cat, b.name, noun, material),
		Price:       price{Amount: amount, Currency: "USD"},
		Stock:       stock,
		Category:    cat.slug,
		Images:      images,
		UpdatedAt:   updatedBase.Add(time.Duration(r.intn(240*24*3600)) * time.Second),
	}
}

// describe writes three to six sentences: an opening, two or three features of the
// category, and sometimes care and shipping notes.
func describe(r *rng, cat category, brand, noun, material string) string {
	s := []string{
		fmt.Sprintf(pick(r, openings), brand, strings.ToLower(noun), pick(r, cat.uses)),
		fmt.Sprintf(pick(r, materialLines), material),
	}
	s = append(s, shuffled(r, cat.features)[:2+r.intn(2)]...)
	if r.intn(3) > 0 {
		s = append(s, pick(r, careLines))
	}
	if r.intn(2) == 0 {
		s = append(s, fmt.Sprintf("Backed by a %d-year %s warranty.", 1+r.intn(5), brand))
	}
	return strings.Join(s, " ")
}

func titleCase(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// rng is SplitMix64. A few lines of our own pin the catalog's bytes to this file rather
// than to how a standard-library generator maps its stream onto ranges.
type rng struct{ state uint64 }

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n). The modulo bias is far below anything sample data
// could show.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

func pick[T any](r *rng, s []T) T { return s[r.intn(len(s))] }

// shuffled returns a shuffled copy of s (Fisher-Yates).
func shuffled[T any](r *rng, s []T) []T {
	out := append([]T(nil), s...)
	for i := len(out) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		out[i], out[j] = out[j], out[i]
	}
	return out
}
