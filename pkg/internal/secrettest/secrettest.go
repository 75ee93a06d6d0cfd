// Package secrettest is a fake AWS Secrets Manager for tests: an httptest server that
// answers GetSecretValue in the service's JSON protocol (POST / with X-Amz-Target:
// secretsmanager.GetSecretValue), counts the requests, and can be told to fail or to
// answer slowly.
//
// Point a client at it with secretsmanager.Options.BaseEndpoint (secret.Options.Endpoint)
// in-process, or with the variables of [Server.Env] in a child process: package secret
// reads AWS_ENDPOINT_URL_SECRETS_MANAGER and the credentials from the environment. The
// server checks that a request is signed (SigV4 for the secretsmanager service) but not
// the signature.
package secrettest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Test credentials and an ARN of the right form. The account id is AWS's documented
// example, owned by no one.
const (
	AccessKeyID     = "AKIDSECRETTEST"
	SecretAccessKey = "secrettest-not-a-real-key"
	Region          = "eu-west-1"
	ARNPrefix       = "arn:aws:secretsmanager:" + Region + ":123456789012:secret:"
)

// ARN returns a secret ARN with name and the random suffix Secrets Manager adds.
func ARN(name string) string { return ARNPrefix + name + "-AbCdEf" }

// Server is a fake Secrets Manager. Its zero secrets answer ResourceNotFoundException.
type Server struct {
	// URL is the endpoint, for BaseEndpoint or AWS_ENDPOINT_URL_SECRETS_MANAGER.
	URL string

	srv      *httptest.Server
	requests atomic.Int64
	release  chan struct{} // closed at cleanup, so slow answers end

	mu      sync.Mutex
	secrets map[string]answer
	delay   time.Duration
	last    Request
}

// Request is what the server saw of one GetSecretValue call.
type Request struct {
	SecretID      string
	Authorization string
}

type answer struct {
	value   *string
	binary  []byte
	errType string
	message string
	status  int
}

// Start runs a fake Secrets Manager until the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{secrets: map[string]answer{}, release: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	tb.Cleanup(func() {
		close(s.release)
		s.srv.Close()
	})
	return s
}

// Put makes id answer value as its SecretString.
func (s *Server) Put(id, value string) { s.set(id, answer{value: &value}) }

// PutBinary makes id answer b as its SecretBinary, with no SecretString.
func (s *Server) PutBinary(id string, b []byte) { s.set(id, answer{binary: b}) }

// Fail makes id answer an error of the given type (such as "AccessDeniedException")
// with HTTP status 400.
func (s *Server) Fail(id, errType, message string) {
	s.set(id, answer{errType: errType, message: message, status: http.StatusBadRequest})
}

// Delete makes id unknown again: ResourceNotFoundException.
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.secrets, id)
}

func (s *Server) set(id string, a answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[id] = a
}

// SetDelay holds every later answer back by d (or until the client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Requests is how many requests reached the server, well-formed or not.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Last returns the last GetSecretValue request seen.
func (s *Server) Last() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Env is the environment that points package secret (or any AWS SDK) in a process at
// this server with the test credentials and nothing of the real environment's: no
// session token, no shared config files, no instance metadata service.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER":    s.URL,
		"AWS_ACCESS_KEY_ID":                   AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":               SecretAccessKey,
		"AWS_SESSION_TOKEN":                   "",
		"AWS_REGION":                          Region,
		"AWS_PROFILE":                         "",
		"AWS_CONFIG_FILE":                     "/nonexistent/secrettest/config",
		"AWS_SHARED_CREDENTIALS_FILE":         "/nonexistent/secrettest/credentials",
		"AWS_EC2_METADATA_DISABLED":           "true",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "false",
	}
}

// Setenv sets [Server.Env] in this process for the rest of the test (t.Setenv: not
// for parallel tests).
func (s *Server) Setenv(t *testing.T) {
	t.Helper()
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	const target = "secretsmanager.GetSecretValue"
	auth := r.Header.Get("Authorization")
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		s.fail(w, http.StatusNotFound, "UnknownOperationException", "want POST /")
		return
	case r.Header.Get("X-Amz-Target") != target:
		s.fail(w, http.StatusBadRequest, "UnknownOperationException", "want X-Amz-Target: "+target)
		return
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1"):
		s.fail(w, http.StatusBadRequest, "SerializationException", "want application/x-amz-json-1.1")
		return
	case !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=") || !strings.Contains(auth, "/secretsmanager/aws4_request"):
		s.fail(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "request is not signed for secretsmanager")
		return
	}
	var in struct{ SecretId string }
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &in); err != nil || in.SecretId == "" {
		s.fail(w, http.StatusBadRequest, "InvalidParameterException", "want a JSON body with SecretId")
		return
	}
	s.mu.Lock()
	a, known := s.secrets[in.SecretId]
	delay := s.delay
	s.last = Request{SecretID: in.SecretId, Authorization: auth}
	s.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.release:
			return
		}
	}
	switch {
	case !known:
		s.fail(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	case a.errType != "":
		s.fail(w, a.status, a.errType, a.message)
	default:
		name := strings.TrimPrefix(in.SecretId, ARNPrefix)
		out := map[string]any{
			"ARN":           in.SecretId,
			"Name":          name,
			"VersionId":     "3f1e2d7c-0000-4000-8000-000000000001",
			"VersionStages": []string{"AWSCURRENT"},
			"CreatedDate":   1.7e9,
		}
		if a.value != nil {
			out["SecretString"] = *a.value
		}
		if a.binary != nil {
			out["SecretBinary"] = a.binary // encoding/json writes []byte as base64, as the protocol wants
		}
		s.write(w, http.StatusOK, out)
	}
}

func (s *Server) fail(w http.ResponseWriter, status int, errType, message string) {
	s.write(w, status, map[string]string{"__type": errType, "message": message})
}

func (s *Server) write(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // maps of strings, numbers and byte slices always encode
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", "00000000-0000-4000-8000-000000000000")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
