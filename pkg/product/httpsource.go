package product

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MaxResponseBytes is the largest response body [HTTPSource] reads: 1 MiB, far above
// any real product and small enough that a broken upstream cannot exhaust a small
// Lambda's memory.
const MaxResponseBytes = 1 << 20

// HTTPSource is a [Source] for stores whose products live in another service. For id
// it sends GET {base}/{id} with Accept: application/json and decodes a [Product] from
// the JSON body. A 404 is [ErrNotFound]; any other status outside 2xx is an error
// naming the status (never quoting the body). An HTTPSource is safe for concurrent use.
//
// Credentials in the base URL (https://user:password@host/...) are sent as HTTP basic
// auth, and errors never contain them: they name the endpoint without userinfo or query
// string, since either may carry a secret.
type HTTPSource struct {
	client *http.Client
	prefix string        // scheme://host/path/, without userinfo, query or fragment
	query  string        // the base URL's raw query, sent with every request
	user   *url.Userinfo // nil when the base URL has none
}

var _ Source = (*HTTPSource)(nil)

// NewHTTPSource returns a source that reads products from the service at baseURL, an
// absolute http:// or https:// URL whose path the ids are appended to. A call to
// Product, reading the body included, gives up after timeout, which must be positive.
//
// client, if not nil, supplies the transport, redirect policy and cookie jar; its
// Timeout is replaced by timeout. With nil, a client on http.DefaultTransport is used.
func NewHTTPSource(baseURL string, timeout time.Duration, client *http.Client) (*HTTPSource, error) {
	// The parse error is dropped because it quotes the URL, password and all.
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("product: http source: base URL: want an absolute http:// or https:// URL")
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("product: http source: timeout must be positive, not %v", timeout)
	}
	c := &http.Client{Timeout: timeout}
	if client != nil {
		copied := *client
		copied.Timeout = timeout
		c = &copied
	}
	s := &HTTPSource{client: c, query: u.RawQuery, user: u.User}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	s.prefix = strings.TrimSuffix(u.String(), "/") + "/"
	return s, nil
}

// String returns the base URL without credentials or query string, for logs.
func (s *HTTPSource) String() string { return strings.TrimSuffix(s.prefix, "/") }

// Product fetches the product with the given id. Besides the errors described on
// [HTTPSource], it rejects an id [ParseID] rejects without sending anything, a body
// over [MaxResponseBytes], a body that is not a product in JSON, and a product whose
// id is not the one asked for (a misrouted request must not be cached under id).
func (s *HTTPSource) Product(ctx context.Context, id string) (Product, error) {
	if _, err := ParseID(id); err != nil {
		return Product{}, err // already says why, and must not quote id
	}
	endpoint := s.prefix + url.PathEscape(id)
	target := endpoint
	if s.query != "" {
		target += "?" + s.query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		// Not wrapped: it would quote target, query string included.
		return Product{}, fmt.Errorf("product: http source: get %s: cannot build the request", endpoint)
	}
	req.Header.Set("Accept", "application/json")
	if s.user != nil {
		password, _ := s.user.Password()
		req.SetBasicAuth(s.user.Username(), password)
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return Product{}, fmt.Errorf("product: http source: get %s: %w", endpoint, withoutURL(err))
	}
	defer resp.Body.Close()

	switch code := resp.StatusCode; {
	case code == http.StatusNotFound:
		drain(resp.Body)
		return Product{}, fmt.Errorf("product: http source: get %s: %w", endpoint, ErrNotFound)
	case code < 200 || code > 299:
		drain(resp.Body)
		// The status text is the standard one, not the upstream's reason phrase.
		return Product{}, fmt.Errorf("product: http source: get %s: upstream answered %d %s",
			endpoint, code, http.StatusText(code))
	}
	if resp.ContentLength > MaxResponseBytes {
		return Product{}, fmt.Errorf("product: http source: get %s: %w", endpoint, errTooLarge)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return Product{}, fmt.Errorf("product: http source: get %s: read body: %w", endpoint, err)
	}
	if len(body) > MaxResponseBytes {
		return Product{}, fmt.Errorf("product: http source: get %s: %w", endpoint, errTooLarge)
	}
	var p Product
	if err := json.Unmarshal(body, &p); err != nil {
		return Product{}, fmt.Errorf("product: http source: get %s: decode response: %w", endpoint, err)
	}
	if p.ID != id {
		// The upstream's id is not quoted: it could be anything.
		return Product{}, fmt.Errorf("product: http source: get %s: response is for another product", endpoint)
	}
	p.UpdatedAt = p.UpdatedAt.UTC()
	return p, nil
}

var errTooLarge = fmt.Errorf("response larger than %d bytes", MaxResponseBytes)

// withoutURL unwraps the *url.Error that http.Client returns, because it quotes the
// request URL, query string included; callers name the endpoint themselves.
func withoutURL(err error) error {
	if uerr, ok := errors.AsType[*url.Error](err); ok {
		return uerr.Err
	}
	return err
}

// drain reads a little of an unwanted body so that the connection can be reused
// without reading a large error page to the end.
func drain(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
}
