package serve

import (
	"encoding/base64"
	"errors"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// Why an event cannot become a request. The messages are fixed: what the event held
// is never logged (a query string may carry a token, and a path or header a line
// break that would start a forged log line).
var (
	errEventMethod = errors.New("serve: event method is not an HTTP token")
	errEventPath   = errors.New("serve: event path has a control character")
	errEventHeader = errors.New("serve: event header name is not an HTTP token or its value has a control character")
	errEventURL    = errors.New("serve: event path, query string or domain name is not a URL")
	errEventBody   = errors.New("serve: event body is not the base64 it claims to be")
	// errEventConvert is api-proxy's own refusal, which the checks above leave no
	// room for: its error holds the whole URL, query string included, so it is not
	// logged.
	errEventConvert = errors.New("serve: api-proxy could not convert the event")
)

// The checks below run before api-proxy sees an event. They refuse what API Gateway
// never sends (a method that is not a token, control characters in a path or header,
// a header name that is not a token) and everything that would make api-proxy's
// conversion fail: that failure is printed to stdout with fmt.Printf, around the raw
// method and path, and logged twice with the log package, with the whole URL. Past
// the checks, api-proxy's EventToRequest cannot fail: it fails only when the body is
// not base64, or http.NewRequest refuses the upper-cased method (not a token) or the
// URL (url.Parse of the same string the checks parse).

// checkV2 checks an HTTP API payload 2.0 or function URL event, whose rawPath has
// been filled in and stripped of the stage as api-proxy will read it.
func checkV2(ev *events.APIGatewayV2HTTPRequest) error {
	if !validMethod(ev.RequestContext.HTTP.Method) {
		return errEventMethod
	}
	if hasCTL(ev.RawPath) || hasCTL(ev.RequestContext.HTTP.Path) {
		return errEventPath
	}
	for k, v := range ev.Headers {
		if !validHeaderName(k) || !validHeaderValue(v) {
			return errEventHeader
		}
	}
	// api-proxy adds each cookie as a Cookie header.
	for _, c := range ev.Cookies {
		if !validHeaderValue(c) {
			return errEventHeader
		}
	}
	if ev.IsBase64Encoded && !validBase64(ev.Body) {
		return errEventBody
	}
	// api-proxy appends rawQueryString as it is; the query string parameters it
	// falls back to are encoded, so they cannot make the URL invalid.
	return checkURL(ev.RequestContext.DomainName, ev.RawPath, ev.RawQueryString)
}

// checkV1 checks a REST API or HTTP API payload 1.0 event, whose path has been
// stripped of the stage as api-proxy will read it.
func checkV1(ev *events.APIGatewayProxyRequest) error {
	if !validMethod(ev.HTTPMethod) {
		return errEventMethod
	}
	if hasCTL(ev.Path) || hasCTL(ev.RequestContext.Path) {
		return errEventPath
	}
	for k, v := range ev.Headers {
		if !validHeaderName(k) || !validHeaderValue(v) {
			return errEventHeader
		}
	}
	for k, vs := range ev.MultiValueHeaders {
		if !validHeaderName(k) {
			return errEventHeader
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return errEventHeader
			}
		}
	}
	if ev.IsBase64Encoded && !validBase64(ev.Body) {
		return errEventBody
	}
	// api-proxy builds the query string of a v1 event from its parameters with
	// url.QueryEscape, whose output ([A-Za-z0-9-_.~+=&] and whole %XX escapes) cannot
	// make a URL invalid, wherever it lands (query or fragment): the URL without it is
	// the one to check.
	return checkURL(ev.RequestContext.DomainName, ev.Path, "")
}

// checkURL parses the URL api-proxy will build from the domain name (or the
// GO_API_HOST it prefers), the path and the raw query string, unless it is plain
// enough that url.Parse cannot refuse it.
func checkURL(domain, path, rawQuery string) error {
	if hasCTL(domain) || hasCTL(rawQuery) {
		// url.Parse refuses them too, but the reason is plainer here.
		return errEventURL
	}
	host, custom := os.LookupEnv(core.CustomHostVariable)
	if !custom && plainURL(domain, path, rawQuery) {
		return nil
	}
	var b strings.Builder
	b.Grow(len("https://") + len(host) + len(domain) + 1 + len(path) + 1 + len(rawQuery))
	if custom {
		b.WriteString(host)
	} else {
		b.WriteString("https://")
		b.WriteString(domain)
	}
	if !strings.HasPrefix(path, "/") {
		b.WriteByte('/')
	}
	b.WriteString(path)
	if rawQuery != "" {
		b.WriteByte('?')
		b.WriteString(rawQuery)
	}
	if _, err := url.Parse(b.String()); err != nil {
		return errEventURL
	}
	return nil
}

// plainURL reports whether url.Parse cannot fail on "https://" + domain + path +
// "?" + rawQuery, none of which holds a control character: the domain is letters,
// digits, dots and hyphens (no port, user or IP literal to check), and neither the
// path nor the query has a percent escape or a fragment to check. That is nearly
// every event, which then costs no parse and no allocation.
func plainURL(domain, path, rawQuery string) bool {
	for i := 0; i < len(domain); i++ {
		if c := domain[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return !strings.ContainsAny(path, "%#") && !strings.ContainsAny(rawQuery, "%#")
}

// validMethod reports whether m is a non-empty HTTP token, as http.NewRequest
// requires of the method once api-proxy has upper-cased it (which maps no byte
// outside a token into one: non-ASCII bytes are refused first).
func validMethod(m string) bool {
	return m != "" && isToken(m)
}

// validHeaderName reports whether k is a non-empty HTTP token (RFC 9110, 5.1).
func validHeaderName(k string) bool {
	return k != "" && isToken(k)
}

// validHeaderValue reports whether v holds no control character but horizontal tab
// (RFC 9110, 5.5: CR, LF and NUL are never valid; bytes past ASCII are).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// hasCTL reports whether s has an ASCII control character, which no path API
// Gateway sends holds raw, and which url.Parse refuses anywhere in a URL.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// validBase64 reports whether api-proxy can decode body, with the same decoder.
func validBase64(body string) bool {
	_, err := base64.StdEncoding.DecodeString(body)
	return err == nil
}

// tokenChar holds the bytes of an HTTP token (RFC 9110, 5.6.2).
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}
