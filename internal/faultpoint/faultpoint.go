// Package faultpoint kills the process at named points, for crash tests,
// the way etcd's gofail comments do: with CDC2S3_FAULTPOINT=name (or
// name:N to fire at the N-th hit, default 1) set in the environment, Hit
// sends the process SIGKILL when it reaches that point. Unset, Hit costs one
// atomic load.
package faultpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Points where a crash matters most for exactly-once delivery.
const (
	// AfterUpload is between uploading a batch's files and saving the
	// checkpoint that covers them.
	AfterUpload = "after-upload"
	// AfterCheckpoint is between saving the checkpoint and acknowledging
	// it to PostgreSQL.
	AfterCheckpoint = "after-checkpoint"
)

var (
	once   sync.Once
	name   string
	target int64
	hits   atomic.Int64
)

func load() {
	v := os.Getenv("CDC2S3_FAULTPOINT")
	if v == "" {
		return
	}
	name, target = v, 1
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		if n, err := strconv.ParseInt(v[i+1:], 10, 64); err == nil && n > 0 {
			name, target = v[:i], n
		}
	}
}

// Hit kills the process if point is the configured fault point and this is
// the configured hit.
func Hit(point string) {
	once.Do(load)
	if name != point {
		return
	}
	if hits.Add(1) == target {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // wait for the signal
	}
}
