package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// s3StartTimeout bounds how long one versitygw start may take (not counting
// the build).
const s3StartTimeout = 30 * time.Second

// S3Server is a versitygw S3 gateway on 127.0.0.1 serving a temp directory
// with its posix backend, with one root account.
type S3Server struct {
	dir    string // temp dir: data/, sidecar/, log
	port   int
	access string
	secret string
	client *s3.Client

	mu   sync.Mutex
	proc *process
}

// NewS3 starts an S3 server for tb and stops it when tb ends. It fails tb if
// the server cannot start, and skips it under -short (see Integration).
func NewS3(tb testing.TB) *S3Server {
	tb.Helper()
	Integration(tb, "versitygw")
	s, err := StartS3(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// StartS3 starts versitygw on a free port, building it into ToolsDir first
// if needed (a couple of minutes, once). The caller calls Stop.
func StartS3(ctx context.Context) (*S3Server, error) {
	bin, err := versitygw(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cdc2s3-s3-")
	if err != nil {
		return nil, fmt.Errorf("s3 server: %w", err)
	}
	s := &S3Server{
		dir:    dir,
		access: "cdc2s3" + randomHex(6),
		secret: randomHex(20),
	}
	for _, d := range []string{"data", "sidecar"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("s3 server: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		if s.port, err = FreePort(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("s3 server: %w", err)
		}
		err = s.start(ctx, bin)
		if err == nil {
			return s, nil
		}
		if attempt == 4 || !strings.Contains(logTail(s.logPath(), 20), "address already in use") {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func (s *S3Server) logPath() string { return filepath.Join(s.dir, "versitygw.log") }

// start runs versitygw and waits until it serves S3 requests.
func (s *S3Server) start(ctx context.Context, bin string) error {
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("s3 server: %w", err)
	}
	// Metadata (ETags, conditional-write state) goes to a sidecar directory
	// so the data directory's file system need not support extended
	// attributes. Never --nometa: it silently drops conditional writes.
	cmd := exec.Command(bin, // no context: the server outlives ctx
		"--port", "127.0.0.1:"+strconv.Itoa(s.port),
		"--region", s.Region(),
		"--quiet",
		"posix",
		"--sidecar", filepath.Join(s.dir, "sidecar"),
		filepath.Join(s.dir, "data"),
	)
	cmd.Dir = s.dir
	// Credentials by environment, not argv, so ps does not show them.
	cmd.Env = append(cleanEnv("VGW_", "ROOT_", "AWS_"),
		"ROOT_ACCESS_KEY_ID="+s.access, "ROOT_SECRET_ACCESS_KEY="+s.secret)
	cmd.Stdout = logf
	cmd.Stderr = logf
	proc, err := startProcess(cmd)
	logf.Close()
	if err != nil {
		return fmt.Errorf("s3 server: start %s: %w", bin, err)
	}
	s.proc = proc
	s.client = s3.New(s3.Options{
		Region:       s.Region(),
		BaseEndpoint: aws.String(s.Endpoint()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.access, s.secret, ""),
	})

	var lastErr error
	err = Poll(ctx, s3StartTimeout, func() (bool, error) {
		if proc.exited() {
			return false, proc.errExited()
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second)
		if err != nil {
			lastErr = err
			return false, nil
		}
		c.Close()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := s.client.ListBuckets(cctx, &s3.ListBucketsInput{}); err != nil {
			lastErr = err
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		proc.kill()
		if lastErr != nil {
			err = fmt.Errorf("%w (last error: %v)", err, lastErr)
		}
		return fmt.Errorf("s3 server: versitygw on port %d did not start: %w\nversitygw log:\n%s",
			s.port, err, logTail(s.logPath(), 30))
	}
	return nil
}

// Endpoint returns the server's URL, http://127.0.0.1:PORT.
func (s *S3Server) Endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

// AccessKey returns the root account's access key id.
func (s *S3Server) AccessKey() string { return s.access }

// SecretKey returns the root account's secret access key.
func (s *S3Server) SecretKey() string { return s.secret }

// Region returns the region the server reports, "us-east-1".
func (s *S3Server) Region() string { return "us-east-1" }

// DataDir returns the directory the posix backend serves: one
// subdirectory per bucket.
func (s *S3Server) DataDir() string { return filepath.Join(s.dir, "data") }

// Client returns an S3 client for the server with the root credentials and
// path-style addressing.
func (s *S3Server) Client() *s3.Client { return s.client }

// Env returns the AWS SDK environment variables that point a child process
// (or the default credential chain) at this server as root.
func (s *S3Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.access,
		"AWS_SECRET_ACCESS_KEY=" + s.secret,
		"AWS_REGION=" + s.Region(),
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint(),
	}
}

// CreateBucket creates bucket name. Creating a bucket that exists is an
// error.
func (s *S3Server) CreateBucket(ctx context.Context, name string) error {
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("s3 server: create bucket %s: %w", name, err)
	}
	return nil
}

// Stop ends the server and removes its directory. Calling it again does
// nothing.
func (s *S3Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		return nil
	}
	if s.proc != nil {
		s.proc.stop(syscall.SIGTERM, 10*time.Second)
		s.proc.kill()
	}
	err := os.RemoveAll(s.dir)
	s.dir = ""
	if err != nil {
		return fmt.Errorf("s3 server: remove data: %w", err)
	}
	return nil
}
