package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/preflight"
	"github.com/cdc2s3/cdc2s3/internal/testenv"
)

// testCA makes a CA and a server certificate it signs for the DNS name
// host, as PEM.
func testCA(t *testing.T, host string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cdc2s3 test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// TestTLSVerifyFull runs against a server whose certificate a test CA
// signed for "localhost": with sslmode=verify-full and the CA as
// sslrootcert, check passes and the daemon streams (both its connections
// over TLS); by IP address, the host name check fails and says what to
// connect to; with another CA, it says to set sslrootcert.
func TestTLSVerifyFull(t *testing.T) {
	caPEM, certPEM, keyPEM := testCA(t, "localhost")
	pg := testenv.NewPostgres(t, testenv.PostgresOptions{
		Files:    map[string][]byte{"server.crt": certPEM, "server.key": keyPEM},
		Settings: map[string]string{"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"},
	})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	otherCA, _, _ := testCA(t, "localhost")
	otherFile := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(otherFile, otherCA, 0o644); err != nil {
		t.Fatal(err)
	}
	dsn := func(host, root string) string {
		return fmt.Sprintf("postgres://postgres:%s@%s:%d/postgres?sslmode=verify-full&sslrootcert=%s", pg.Password(), host, pg.Port(), root)
	}
	dest := t.TempDir()
	args := func(source string) []string {
		return []string{"--source", source, "--dest", dest, "--slot", "tls", "--publication", "tls"}
	}

	out, _ := runCheck(t, args(dsn("localhost", caFile))...)
	out.expect(t, preflight.NameConnect, preflight.OK, []string{"PostgreSQL 15"})
	out.expect(t, preflight.NameReplConn, preflight.OK, nil)

	out, code := runCheck(t, args(dsn("127.0.0.1", caFile))...)
	if code == 0 {
		t.Error("check passed with a host name the certificate does not hold")
	}
	out.expect(t, preflight.NameConnect, preflight.Fail, []string{"certificate is for localhost, not 127.0.0.1", "verify-full"})

	out, _ = runCheck(t, args(dsn("localhost", otherFile))...)
	out.expect(t, preflight.NameConnect, preflight.Fail, []string{"not signed by a CA that sslrootcert holds", "global-bundle.pem"})

	d := start(t, append([]string{"run"}, args(dsn("localhost", caFile))...)...)
	waitLog(t, d, regexp.MustCompile(`msg=streaming`), 1, 2*time.Minute)
	d.stop(t)
	if regexp.MustCompile(pg.Password()).MatchString(d.out.String()) {
		t.Error("the password reached the log")
	}
}
