package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
)

// serveMetrics listens on addr and serves h until the server is closed. A
// bad or busy address is reported before the daemon starts.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("invalid --metrics-addr %q: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", logkey.Error, err)
		}
	}()
	log.Info("serving metrics", logkey.Addr, ln.Addr().String())
	return srv, nil
}
