package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU accounting. The machine may be shared (other people's test runs), so
// every measurement also records how much CPU went to processes that are
// not part of it: the machine's busy time less the PostgreSQL cluster's,
// the S3 server's, this program's and the measured process's.

// accounted are the long-lived processes whose CPU time is ours.
var accounted struct {
	postmaster int // the cluster's postmaster; its children are the backends
	s3         int // versitygw
}

// cpuSnap is one reading of the CPU counters.
type cpuSnap struct {
	machine time.Duration // busy time of the whole machine
	server  time.Duration // the cluster: postmaster with live and reaped children
	// serverSys is the part of server spent in the kernel (system time).
	serverSys time.Duration
	s3        time.Duration
	self      time.Duration // this program
}

func takeSnap() cpuSnap {
	s := cpuSnap{machine: machineBusy()}
	if st, ok := readStat("self"); ok {
		s.self = st.cpu
	}
	if accounted.s3 > 0 {
		if st, ok := readStat(strconv.Itoa(accounted.s3)); ok {
			s.s3 = st.cpu
		}
	}
	if pm := accounted.postmaster; pm > 0 {
		s.server, s.serverSys = serverCPU(strconv.Itoa(pm), pm)
	}
	return s
}

// serverCPU returns the CPU time of the cluster, and the system part of
// it: the postmaster's own, its reaped children's (in its children times)
// and its live children's.
// A backend reaped while /proc is being scanned would be in neither the
// children times read before the scan nor the scan, and one reaped after
// it would be in both, so the postmaster is read before and after the scan
// and the scan is repeated until nothing was reaped meanwhile.
func serverCPU(pid string, pm int) (total, sys time.Duration) {
	for range 20 {
		before, ok := readStat(pid)
		if !ok {
			return 0, 0
		}
		total = before.cpu + before.children
		sys = before.sys + before.childrenSys
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if e.Name()[0] < '0' || e.Name()[0] > '9' {
				continue
			}
			if st, ok := readStat(e.Name()); ok && st.ppid == pm {
				total += st.cpu
				sys += st.sys
			}
		}
		if after, ok := readStat(pid); ok && after.children == before.children {
			return total, sys
		}
	}
	return total, sys
}

// foreign returns the CPU time between two readings that none of the
// accounted processes used, given the CPU time of our measured children.
func foreign(a, b cpuSnap, children time.Duration) time.Duration {
	d := (b.machine - a.machine) - (b.server - a.server) - (b.s3 - a.s3) - (b.self - a.self) - children
	return max(d, 0)
}

// procStat is what /proc/<pid>/stat says about CPU.
type procStat struct {
	ppid     int
	cpu      time.Duration // utime + stime
	children time.Duration // cutime + cstime: waited-for children
	// sys and childrenSys are the system parts: stime and cstime.
	sys, childrenSys time.Duration
}

func readStat(pid string) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command name is in parentheses and may hold spaces; the fields
	// after it start at field 3 (state). ppid is field 4, utime..cstime
	// fields 14..17.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return procStat{}, false
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	return procStat{
		ppid:        int(n(1)),
		cpu:         time.Duration(n(11)+n(12)) * clockTick,
		children:    time.Duration(n(13)+n(14)) * clockTick,
		sys:         time.Duration(n(12)) * clockTick,
		childrenSys: time.Duration(n(14)) * clockTick,
	}, true
}

// machineBusy returns the busy CPU time of the whole machine since boot,
// from the first line of /proc/stat: user, nice, system, irq and softirq
// (not idle, iowait, steal, or guest, which user already holds).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, s := range f[1:] {
		switch i {
		case 0, 1, 2, 5, 6: // user nice system idle iowait irq softirq steal guest guest_nice
			n, _ := strconv.ParseInt(s, 10, 64)
			busy += n
		}
	}
	return time.Duration(busy) * clockTick
}

// quietThreshold is the other load under which the machine counts as
// quiet: 15% of one CPU.
const quietThreshold = 0.15

// waitQuiet waits, up to the configured time, until other load on the
// machine has stayed below quietThreshold for two seconds, so that a
// measurement starts on a quiet machine. It returns how long it waited.
func (b *bench) waitQuiet(ctx context.Context, what string) time.Duration {
	start := time.Now()
	quiet := 0
	for {
		s0 := takeSnap()
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-time.After(500 * time.Millisecond):
		}
		s1 := takeSnap()
		if foreign(s0, s1, 0).Seconds()/0.5 < quietThreshold {
			if quiet++; quiet >= 4 {
				if w := time.Since(start); w > 3*time.Second {
					b.say("   (waited %s for other load on the machine to stop)", w.Round(time.Second))
				}
				return time.Since(start)
			}
			continue
		}
		quiet = 0
		if time.Since(start) > b.cfg.QuietWait {
			b.warn("other processes kept the machine busy for %s before %s; measuring anyway (see the other-load column)", b.cfg.QuietWait, what)
			return time.Since(start)
		}
	}
}
