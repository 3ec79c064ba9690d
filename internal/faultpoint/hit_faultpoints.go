//go:build faultpoints

package faultpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Enabled reports whether this binary was built with the faultpoints tag,
// so that Hit can kill it. It is true in this build.
const Enabled = true

var (
	once   sync.Once
	name   string
	target int64
	hits   atomic.Int64
)

func load() {
	v := os.Getenv(EnvVar)
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

var (
	delayOnce sync.Once
	delayName string
	delayFor  time.Duration
)

// Delay sleeps at point for the duration CDC2S3_FAULTDELAY gives it
// (name:duration), each time it is reached.
func Delay(point string) {
	delayOnce.Do(func() {
		v := os.Getenv(DelayEnvVar)
		if i := strings.LastIndexByte(v, ':'); i >= 0 {
			if d, err := time.ParseDuration(v[i+1:]); err == nil {
				delayName, delayFor = v[:i], d
			}
		}
	})
	if delayName == point {
		time.Sleep(delayFor)
	}
}
