package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

func newCA(tb testing.TB, dir, name string) *testCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+".pem")}
	writePEM(tb, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a server certificate for 127.0.0.1 and localhost, signed by ca, and
// its key; it returns the two file names.
func (ca *testCA) issue(tb testing.TB, dir string) (certFile, keyFile string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	writePEM(tb, certFile, "CERTIFICATE", der)
	writePEM(tb, keyFile, "PRIVATE KEY", kb)
	return certFile, keyFile
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func writePEM(tb testing.TB, file, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// TestTLS: a redis-server that speaks only TLS (rediss://), with a private CA given in
// REDIS_TLS_CA_FILE, caches as usual; with a CA that did not sign the server's
// certificate, health says tls_error and product reads are served without the cache.
func TestTLS(t *testing.T) {
	t.Parallel()
	bin := redistest.ServerBinary(t)
	dir := t.TempDir()
	ca := newCA(t, dir, "storeapi-e2e-ca")
	other := newCA(t, dir, "another-ca")
	certFile, keyFile := ca.issue(t, dir)
	port := redistest.FreePort(t)
	p := startProcess(t, dir, bin, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", ca.file,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", dir)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	// The test's own client, for evidence, trusts the test CA too.
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	evidence := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true,
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}})
	t.Cleanup(func() { _ = evidence.Close() })
	ctx := context.Background()
	eventually(t, 10*time.Second, 20*time.Millisecond, "redis-server with TLS to answer", func() bool {
		if p.exited() {
			t.Fatalf("redis-server exited (was it built with TLS?):\n%s", p.output())
		}
		return evidence.Ping(ctx).Err() == nil
	})

	s := newStack(t, "rediss://"+addr, "REDIS_TLS_CA_FILE", ca.file)
	gp, hl := s.start("getproduct"), s.start("health")
	const id = "prod-0008"
	wantProduct(t, gp.invoke(productEvent(t, v2, id)), id, "MISS")
	hits := keyspaceHits(t, evidence)
	wantProduct(t, gp.invoke(productEvent(t, v1, id)), id, "HIT")
	if d := keyspaceHits(t, evidence) - hits; d != 1 {
		t.Errorf("keyspace_hits grew by %d over one HIT, want 1", d)
	}
	if n, err := evidence.Exists(ctx, s.productKey(id)).Result(); err != nil || n != 1 {
		t.Fatalf("EXISTS %s over TLS = %d, %v", s.productKey(id), n, err)
	}
	if r := hl.invoke(healthEvent(t, v2, "")); r.Status != 200 {
		t.Fatalf("health over TLS: %d %s", r.Status, r.Body)
	}

	hlBad := s.start("health", "REDIS_TLS_CA_FILE", other.file)
	r := hlBad.invoke(healthEvent(t, v2, ""))
	wantHealthFail(t, r, "tls_error")
	within(t, "health with the wrong CA", r, faultBound)
	gpBad := s.start("getproduct", "REDIS_TLS_CA_FILE", other.file)
	r = gpBad.invoke(productEvent(t, v2, id))
	wantProduct(t, r, id, "BYPASS")
	if c := gpBad.requestLine(r.requestID()).str("cause"); c != "tls_error" {
		t.Errorf("getProduct with the wrong CA: cause %q, want tls_error", c)
	}
}

func keyspaceHits(tb testing.TB, c *redis.Client) int64 {
	tb.Helper()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(redistest.InfoField(info, "keyspace_hits")), 10, 64)
	if err != nil {
		tb.Fatalf("keyspace_hits: %v", err)
	}
	return n
}
