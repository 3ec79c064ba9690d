// Package testenv starts the real services that integration tests run
// against: a throwaway PostgreSQL cluster with wal_level = logical and an
// S3-compatible server (versitygw with its posix backend).
//
// The Start* functions return errors so they can be called from TestMain;
// the New* wrappers take a testing.TB, fail the test on error and register
// cleanup. A service that cannot start is a test failure, never a skip: the
// error says why and includes the tail of the service's log.
//
// The one exception is go test -short (make test-unit), which runs no
// servers: the New* wrappers and Integration skip the test with a message
// naming what it needs, and a TestMain that starts services checks Short
// first.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// caller binds it soon after; the Start functions retry with another port
// when they lose that race.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Poll calls cond until it reports true, returns an error, ctx ends or
// timeout passes. The wait between calls grows from 20ms to 500ms.
func Poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := 20 * time.Millisecond
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met within %v: %w", timeout, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

// WaitFor polls cond until it reports true and fails tb when cond returns an
// error or timeout passes. Call it from the test's goroutine.
func WaitFor(tb testing.TB, timeout time.Duration, cond func() (bool, error)) {
	tb.Helper()
	if err := Poll(context.Background(), timeout, cond); err != nil {
		tb.Fatalf("wait: %v", err)
	}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// logTail returns about the last n lines of the file at path, for error
// messages.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	b = bytes.TrimRight(b, "\n")
	if len(b) > 8192 {
		b = b[len(b)-8192:]
	}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// process is a server run as a child in its own process group, killed when
// the test process dies.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// startProcess starts cmd in a new process group and reaps it in the
// background.
func startProcess(cmd *exec.Cmd) (*process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	// If the test binary dies (a timeout panic, a kill), take the server
	// down with it instead of leaving it running.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig to the process and waits up to grace for it to exit, then
// kills the whole process group.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	p.kill()
}

// kill ends the process, its process group and its direct children with
// SIGKILL and waits until they are gone. PostgreSQL backends are children
// of the postmaster in process groups of their own, and keep the shared
// memory attached until they exit; a new postmaster refuses to start before.
func (p *process) kill() {
	pid := p.cmd.Process.Pid
	if p.exited() {
		return
	}
	// Stopped, the process cannot fork children we would miss.
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	kids := children(pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	<-p.done
	deadline := time.Now().Add(10 * time.Second)
	for _, k := range kids {
		for alive(k) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// children returns the pids whose parent is pid, from /proc.
func children(pid int) []int {
	dirs, _ := os.ReadDir("/proc")
	var kids []int
	for _, d := range dirs {
		k, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(k); ok && ppid == pid {
			kids = append(kids, k)
		}
	}
	return kids
}

// alive reports whether pid exists and is not a zombie (a zombie holds no
// memory).
func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// procStat returns the parent pid and state of pid from /proc/PID/stat.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err == nil
}

// errExited describes a process that exited while we waited for it.
func (p *process) errExited() error {
	if p.err == nil {
		return errors.New("exited")
	}
	return fmt.Errorf("exited: %w", p.err)
}
