package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc (USER_HZ): 100 per
// second on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// usage is what one measured process cost, from the rusage that wait4
// returns (the same numbers /usr/bin/time -v prints) and /proc.
type usage struct {
	Wall      time.Duration
	User, Sys time.Duration
	MaxRSS    int64 // bytes, ru_maxrss
	// Server is the CPU time the PostgreSQL cluster used meanwhile (its
	// backends and walsenders).
	Server time.Duration
	// ServerSys is the part of Server spent in the kernel: over loopback
	// TCP it includes the receiving side's TCP work, done in the sender's
	// time.
	ServerSys time.Duration
	// Other is the CPU time used meanwhile by processes that have nothing
	// to do with the measurement: other people's work on a shared machine.
	Other time.Duration
}

// CPU returns user plus system time.
func (u usage) CPU() time.Duration { return u.User + u.Sys }

// proc is a child process that we started and measure.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	start   time.Time
	snap0   cpuSnap

	done  chan struct{}
	end   time.Time
	err   error // from Wait
	usage usage
}

// procs tracks every child still running, so that an interrupted bench
// kills them all (and only them) on its way out.
var procs struct {
	sync.Mutex
	live map[*proc]struct{}
}

// startProc starts argv with extra environment, stdout to stdout (nil:
// discard) and stderr to a log file in the work directory.
func startProc(name, logPath string, env []string, stdout io.Writer, argv ...string) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = stdout
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	// If the bench dies without cleaning up, its children go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	p.snap0 = takeSnap()
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	procs.Lock()
	if procs.live == nil {
		procs.live = map[*proc]struct{}{}
	}
	procs.live[p] = struct{}{}
	procs.Unlock()
	go func() {
		p.err = cmd.Wait()
		p.end = time.Now()
		snap1 := takeSnap()
		p.usage.Wall = p.end.Sub(p.start)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			p.usage.User = time.Duration(ru.Utime.Nano())
			p.usage.Sys = time.Duration(ru.Stime.Nano())
			p.usage.MaxRSS = ru.Maxrss * 1024
		}
		p.usage.Server = snap1.server - p.snap0.server
		p.usage.ServerSys = snap1.serverSys - p.snap0.serverSys
		p.usage.Other = foreign(p.snap0, snap1, p.usage.CPU())
		procs.Lock()
		delete(procs.live, p)
		procs.Unlock()
		close(p.done)
	}()
	return p, nil
}

// runProc runs argv to the end and returns its usage; a non-zero exit is
// an error that quotes the end of its log.
func runProc(ctx context.Context, name, logPath string, env []string, stdout io.Writer, argv ...string) (usage, error) {
	p, err := startProc(name, logPath, env, stdout, argv...)
	if err != nil {
		return usage{}, err
	}
	if err := p.wait(ctx, 0); err != nil {
		return usage{}, err
	}
	return p.usage, nil
}

// pid returns the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit (at most timeout, 0 for no limit) and
// fails unless it exited 0.
func (p *proc) wait(ctx context.Context, timeout time.Duration) error {
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case <-p.done:
	case <-expire:
		p.kill()
		return fmt.Errorf("%s did not exit within %s%s", p.name, timeout, p.logTail())
	case <-ctx.Done():
		p.kill()
		return ctx.Err()
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w%s", p.name, p.err, p.logTail())
	}
	return nil
}

// stop sends SIGTERM (a graceful stop for cdc2s3, SIGINT for
// pg_recvlogical) and waits for a clean exit.
func (p *proc) stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) error {
	if p.exited() {
		if p.err != nil {
			return fmt.Errorf("%s exited early: %w%s", p.name, p.err, p.logTail())
		}
		return fmt.Errorf("%s exited early (status 0)%s", p.name, p.logTail())
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	return p.wait(ctx, timeout)
}

// kill ends the process at once and waits for it.
func (p *proc) kill() {
	if !p.exited() {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// killAll kills every child still running.
func killAll() {
	procs.Lock()
	live := make([]*proc, 0, len(procs.live))
	for p := range procs.live {
		live = append(live, p)
	}
	procs.Unlock()
	for _, p := range live {
		p.kill()
	}
}

// logTail returns the last lines of the process's log, for an error.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "\n--- last lines of " + p.logPath + " ---\n    " + strings.Join(lines, "\n    ")
}

// waitLog waits until the process's log contains s.
func (p *proc) waitLog(ctx context.Context, s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(p.logPath); err == nil && bytes.Contains(b, []byte(s)) {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited before logging %q: %v%s", p.name, s, p.err, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not log %q within %s%s", p.name, s, timeout, p.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
