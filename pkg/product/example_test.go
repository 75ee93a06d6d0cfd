package product_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/acmestore/storeapi/pkg/product"
)

func ExampleCatalog() {
	catalog, err := product.NewCatalog(0)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	p, err := catalog.Product(ctx, "prod-0001")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(catalog.Len(), "products")
	fmt.Println(p.ID, p.SKU, p.Name)
	fmt.Println(p.Price.Amount, p.Price.Currency, p.Category)

	_, err = catalog.Product(ctx, "prod-9999")
	fmt.Println(errors.Is(err, product.ErrNotFound))
	// Output:
	// 1000 products
	// prod-0001 SPT-MR-8919 Meridian Rugged Neoprene Yoga Mat
	// 10195 USD sports
	// true
}

func ExampleParseID() {
	for _, s := range []string{"prod-0001", "../../etc/passwd", "<script>alert(1)</script>", ""} {
		id, err := product.ParseID(s)
		fmt.Printf("%q %v\n", id, err)
	}
	// Output:
	// "prod-0001" <nil>
	// "" product: invalid id: only letters A-Z and a-z, digits, '-' and '_' are allowed
	// "" product: invalid id: only letters A-Z and a-z, digits, '-' and '_' are allowed
	// "" product: invalid id: empty
}

func ExampleHTTPSource() {
	// The upstream product service: here a stub that knows one product.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/products/prod-0042" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"prod-0042","name":"Kettle","price":{"amount":3499,"currency":"USD"}}`)
	}))
	defer upstream.Close()

	// In the functions the URL is PRODUCT_SOURCE_URL and the timeout
	// PRODUCT_SOURCE_TIMEOUT.
	src, err := product.NewHTTPSource(upstream.URL+"/v1/products", 2*time.Second, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	p, err := src.Product(ctx, "prod-0042")
	fmt.Println(p.Name, p.Price.Amount, err)

	_, err = src.Product(ctx, "prod-0043")
	fmt.Println(errors.Is(err, product.ErrNotFound))
	// Output:
	// Kettle 3499 <nil>
	// true
}
