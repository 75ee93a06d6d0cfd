package product

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Credentials planted in base URLs; no error may contain them.
const (
	secretUser     = "alice-user"
	secretPassword = "hunter2-password"
	secretQuery    = "api_key=k3y-in-query"
)

var fixture = Product{
	ID:          "prod-0042",
	SKU:         "KIT-NW-1042",
	Name:        "Northwind Classic Kettle",
	Description: "Boils water.",
	Price:       Price{Amount: 3499, Currency: "USD"},
	Stock:       7,
	Category:    "kitchen",
	Images:      []string{"https://images.acmestore.example/products/prod-0042/front.jpg"},
	UpdatedAt:   time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
}

// newUpstream starts a test server that runs h and is closed when the test ends.
func newUpstream(tb testing.TB, h http.HandlerFunc) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv
}

// newTestHTTPSource returns an HTTPSource for base, failing the test if it cannot.
func newTestHTTPSource(tb testing.TB, base string, timeout time.Duration, client *http.Client) *HTTPSource {
	tb.Helper()
	s, err := NewHTTPSource(base, timeout, client)
	if err != nil {
		tb.Fatalf("NewHTTPSource: %v", err)
	}
	return s
}

// withCredentials puts secretUser, secretPassword and secretQuery into base.
func withCredentials(base string) string {
	return strings.Replace(base, "http://", "http://"+secretUser+":"+secretPassword+"@", 1) + "/products?" + secretQuery
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func TestHTTPSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error  // checked with errors.Is when not nil
		wantMsg string // a substring of the error when not empty
	}{
		{
			name:    "ok",
			handler: func(w http.ResponseWriter, r *http.Request) { writeJSON(w, fixture) },
		},
		{
			name: "non-UTC time is made UTC",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"id":"prod-0042","sku":"KIT-NW-1042","name":"Northwind Classic Kettle",` +
					`"description":"Boils water.","price":{"amount":3499,"currency":"USD"},"stock":7,` +
					`"category":"kitchen","images":["https://images.acmestore.example/products/prod-0042/front.jpg"],` +
					`"extra":"ignored","updatedAt":"2025-06-01T14:00:00+02:00"}`))
			},
		},
		{
			name:    "404",
			handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			want:    ErrNotFound,
		},
		{
			name: "500 names the status, not the body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "panic: db password=opensesame", http.StatusInternalServerError)
			},
			wantMsg: "500 Internal Server Error",
		},
		{
			name: "status without a standard text",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(599)
			},
			wantMsg: "599",
		},
		{
			name: "invalid JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`<html>Gateway login</html>`))
			},
			wantMsg: "decode response",
		},
		{
			name: "truncated JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"id":"prod-0042","name":`))
			},
			wantMsg: "decode response",
		},
		{
			name: "wrong type",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"id":"prod-0042","price":"34.99"}`))
			},
			wantMsg: "decode response",
		},
		{
			name: "another product",
			handler: func(w http.ResponseWriter, r *http.Request) {
				p := fixture
				p.ID = "prod-0043"
				writeJSON(w, p)
			},
			wantMsg: "another product",
		},
		{
			name: "oversized, with Content-Length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(MaxResponseBytes+1))
				w.Write([]byte(`{"id":"prod-0042","description":"`))
				w.Write([]byte(strings.Repeat("x", MaxResponseBytes-35)))
				w.Write([]byte(`"}`))
			},
			want: errTooLarge,
		},
		{
			name: "oversized, streamed",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"id":"prod-0042","description":"`))
				w.(http.Flusher).Flush()
				w.Write([]byte(strings.Repeat("x", MaxResponseBytes)))
				w.Write([]byte(`"}`))
			},
			want: errTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var gotPath, gotAccept, gotQuery, gotUser, gotPassword string
			srv := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				gotPath, gotAccept, gotQuery = r.URL.EscapedPath(), r.Header.Get("Accept"), r.URL.RawQuery
				gotUser, gotPassword, _ = r.BasicAuth()
				tt.handler(w, r)
			})
			s := newTestHTTPSource(t, withCredentials(srv.URL), time.Second, nil)

			p, err := s.Product(context.Background(), fixture.ID)

			if gotPath != "/products/prod-0042" || gotAccept != "application/json" || gotQuery != secretQuery {
				t.Errorf("request: path %q, Accept %q, query %q", gotPath, gotAccept, gotQuery)
			}
			if gotUser != secretUser || gotPassword != secretPassword {
				t.Errorf("request: basic auth %q:%q; want the base URL's userinfo", gotUser, gotPassword)
			}
			if tt.want == nil && tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Product: %v", err)
				}
				if !reflect.DeepEqual(p, fixture) || p.UpdatedAt.Location() != time.UTC {
					t.Fatalf("Product = %+v; want %+v", p, fixture)
				}
				return
			}
			if err == nil {
				t.Fatalf("Product = %+v; want an error", p)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %q; want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q; want it to mention %q", err, tt.wantMsg)
			}
			assertNoSecrets(t, err)
			if strings.Contains(err.Error(), "opensesame") {
				t.Errorf("error %q quotes the response body", err)
			}
		})
	}
}

func assertNoSecrets(tb testing.TB, err error) {
	tb.Helper()
	for _, secret := range []string{secretUser, secretPassword, "k3y-in-query"} {
		if strings.Contains(err.Error(), secret) {
			tb.Errorf("error %q contains %q from the base URL", err, secret)
		}
	}
}

// slowUpstream answers only when the request is given up on, so a test cannot pass by
// waiting for it.
func slowUpstream(tb testing.TB) *httptest.Server {
	tb.Helper()
	return newUpstream(tb, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
}

func TestHTTPSourceTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 50 * time.Millisecond
	srv := slowUpstream(t)
	// A caller's client keeps its transport but gets the source's timeout.
	var used atomic.Bool
	own := &http.Client{Timeout: time.Hour, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Store(true)
		return http.DefaultTransport.RoundTrip(r)
	})}
	tests := []struct {
		name   string
		client *http.Client
	}{
		{"own client", nil},
		{"caller's client", own},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestHTTPSource(t, withCredentials(srv.URL), timeout, tt.client)
			start := time.Now()
			_, err := s.Product(context.Background(), fixture.ID)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Product: %v; want a timeout", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Product gave up after %v; want about %v", d, timeout)
			}
			assertNoSecrets(t, err)
		})
	}
	t.Cleanup(func() {
		if !used.Load() || own.Timeout != time.Hour {
			t.Errorf("caller's client: transport used %v, Timeout now %v; want used and unchanged", used.Load(), own.Timeout)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestHTTPSourceContextCancelled(t *testing.T) {
	t.Parallel()
	srv := slowUpstream(t)
	s := newTestHTTPSource(t, srv.URL, time.Minute, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := s.Product(ctx, fixture.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Product: %v; want the context's error", err)
	}
}

func TestHTTPSourceUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := withCredentials(srv.URL)
	srv.Close()
	s := newTestHTTPSource(t, base, time.Second, nil)
	_, err := s.Product(context.Background(), fixture.ID)
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Product: %v; want a connection error", err)
	}
	assertNoSecrets(t, err)
}

func TestHTTPSourceInvalidIDSendsNothing(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	s := newTestHTTPSource(t, srv.URL, time.Second, nil)
	for _, id := range []string{"", "..", "../admin", "a/b", "a?b=c", "<script>"} {
		if _, err := s.Product(context.Background(), id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Product(%q): %v; want ErrInvalidID", id, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d requests reached the upstream", n)
	}
}

func TestHTTPSourceBasePath(t *testing.T) {
	t.Parallel()
	var path atomic.Value
	srv := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.EscapedPath())
		writeJSON(w, fixture)
	})
	tests := []struct{ name, base, wantPath, wantString string }{
		{"host only", srv.URL, "/prod-0042", srv.URL},
		{"root", srv.URL + "/", "/prod-0042", srv.URL},
		{"path", srv.URL + "/v1/products", "/v1/products/prod-0042", srv.URL + "/v1/products"},
		{"path with slash", srv.URL + "/v1/products/", "/v1/products/prod-0042", srv.URL + "/v1/products"},
		{"escaped path and fragment", srv.URL + "/a%20b#frag", "/a%20b/prod-0042", srv.URL + "/a%20b"},
		{"credentials and query", withCredentials(srv.URL), "/products/prod-0042", srv.URL + "/products"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestHTTPSource(t, tt.base, time.Second, nil)
			if got := s.String(); got != tt.wantString {
				t.Errorf("String = %q; want %q", got, tt.wantString)
			}
			if _, err := s.Product(context.Background(), fixture.ID); err != nil {
				t.Fatalf("Product: %v", err)
			}
			if got := path.Load(); got != tt.wantPath {
				t.Fatalf("path %q; want %q", got, tt.wantPath)
			}
		})
	}
}

func TestNewHTTPSourceRejects(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		timeout time.Duration
	}{
		{"empty", "", time.Second},
		{"relative", "/products", time.Second},
		{"no scheme", "products.internal/products", time.Second},
		{"ftp", "ftp://products.internal/", time.Second},
		{"no host", "http:///products", time.Second},
		{"unparsable with a password", "http://" + secretUser + ":" + secretPassword + "@host:port%zz/", time.Second},
		{"bad escape in password", "http://" + secretUser + ":" + secretPassword + "%zz@host/", time.Second},
		{"zero timeout", "http://products.internal", 0},
		{"negative timeout", "http://products.internal", -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewHTTPSource(tt.base, tt.timeout, nil)
			if err == nil {
				t.Fatalf("NewHTTPSource(%q, %v) = %v; want an error", tt.base, tt.timeout, s)
			}
			assertNoSecrets(t, err)
		})
	}
}
