package lsnstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cdc2s3/cdc2s3/sink"
)

// LeasePrefix holds the lease objects of a destination.
const LeasePrefix = sink.StatePrefix + "lease/"

// ErrLeaseLost is returned when another process took the destination's
// lease: this one must stop writing at once.
var ErrLeaseLost = errors.New("lease lost: another cdc2s3 took over this destination")

// Lease makes one process at a time the writer of a destination, across
// hosts and restarts, with nothing but conditional writes.
//
// Leases are numbered objects _cdc2s3/lease/<generation>. The holder of
// the highest generation is the writer while its expiry lies ahead. To take
// over, a process creates the next generation with PutIfAbsent, so of two
// contenders exactly one wins; the loser waits. The holder renews by
// rewriting its own object and stops (ErrLeaseLost) as soon as it sees a
// higher generation. Expiry is judged by the clock of the process that
// wants to take over: keep clocks in sync within a fraction of the TTL.
type Lease struct {
	s     sink.Store
	ttl   time.Duration
	owner string
	gen   uint64
	// confirmed is when this process last saw it held the lease (taken or
	// renewed), in Unix nanoseconds: Check trusts it for half a TTL.
	confirmed atomic.Int64
	mu        sync.Mutex // one remote check at a time
}

// LeaseRecord is the content of a lease object.
type LeaseRecord struct {
	Owner string `json:"owner"`
	Host  string `json:"host"`
	PID   int    `json:"pid"`
	// PIDNamespace identifies the holder's PID namespace (Linux's
	// /proc/self/ns/pid): two containers may share a host name and PIDs.
	PIDNamespace string    `json:"pid_namespace,omitempty"`
	ExpiresAt    time.Time `json:"expires_at"`
	// Released: the holder gave the lease up. The object stays, so
	// generations are never reused.
	Released bool `json:"released,omitempty"`
}

// NewLease returns a lease handle for store with the given time to live.
func NewLease(s sink.Store, ttl time.Duration) *Lease {
	var b [8]byte
	rand.Read(b[:])
	host, _ := os.Hostname()
	return &Lease{s: s, ttl: ttl, owner: host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b[:])}
}

// deadHere reports whether the holder ran on this host and its process is
// gone (a crash followed by a restart on the same machine): its lease need
// not be waited out. A holder with this process's own PID is not judged
// (a container restarted with the same PID looks alike).
func deadHere(rec *LeaseRecord) bool {
	host, _ := os.Hostname()
	if rec.Host != host || rec.PID <= 0 || rec.PID == os.Getpid() || rec.PIDNamespace != pidNamespace() {
		return false
	}
	return errors.Is(syscall.Kill(rec.PID, 0), syscall.ESRCH)
}

// pidNamespace returns this process's PID namespace ("pid:[4026531836]"),
// or "" where the system does not tell.
func pidNamespace() string {
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return ns
}

func leaseKey(gen uint64) string { return fmt.Sprintf("%s%020d.json", LeasePrefix, gen) }

// ReadLease returns the record of the destination's newest lease object
// (the one a running daemon holds and renews), or nil when there is none or
// it was released. It only reads: expiry is for the caller to judge.
func ReadLease(ctx context.Context, s sink.Store) (*LeaseRecord, error) {
	_, rec, err := current(ctx, s)
	if rec != nil && rec.Released {
		return nil, err
	}
	return rec, err
}

// current returns the highest generation and its record (gen 0: none; a
// nil record: released or unreadable, so free to take).
func current(ctx context.Context, s sink.Store) (uint64, *LeaseRecord, error) {
	objs, err := s.List(ctx, LeasePrefix)
	if err != nil {
		return 0, nil, fmt.Errorf("list leases: %w", err)
	}
	var gen uint64
	for _, o := range objs {
		name := strings.TrimSuffix(strings.TrimPrefix(o.Key, LeasePrefix), ".json")
		if g, err := strconv.ParseUint(name, 10, 64); err == nil && g > gen {
			gen = g
		}
	}
	if gen == 0 {
		return 0, nil, nil
	}
	r, err := s.Get(ctx, leaseKey(gen))
	if errors.Is(err, sink.ErrNotFound) {
		return gen, nil, nil // released: free to take
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read lease: %w", err)
	}
	defer r.Close()
	var rec LeaseRecord
	b, err := io.ReadAll(r)
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		return gen, nil, nil // unreadable: treat as released
	}
	return gen, &rec, nil
}

// TryAcquire takes the lease if it is free or expired. It returns the
// record of the live holder when it is not.
func (l *Lease) TryAcquire(ctx context.Context) (held *LeaseRecord, err error) {
	gen, rec, err := current(ctx, l.s)
	if err != nil {
		return nil, err
	}
	if rec != nil && !rec.Released && time.Now().Before(rec.ExpiresAt) && rec.Owner != l.owner && !deadHere(rec) {
		return rec, nil
	}
	next := gen + 1
	if err := l.write(ctx, next, true); err != nil {
		if !errors.Is(err, sink.ErrPreconditionFailed) {
			return nil, err
		}
		// Someone created this generation first: another process, or this
		// one when a retried request's first attempt did succeed.
		g, rec, err := current(ctx, l.s)
		if err != nil {
			return nil, err
		}
		if g != next || rec == nil || rec.Owner != l.owner {
			if rec == nil {
				rec = &LeaseRecord{Owner: "unknown"}
			}
			return rec, nil
		}
	}
	l.gen = next
	l.confirmed.Store(time.Now().UnixNano())
	// Older generations are history now; the newest object always stays,
	// so the next generation is always higher.
	for g := gen; g > 0 && g+8 > gen; g-- {
		l.s.Delete(ctx, leaseKey(g))
	}
	return nil, nil
}

// Acquire waits until the lease is taken, polling every ttl/3, and calls
// waiting once with the holder while another process holds it.
func (l *Lease) Acquire(ctx context.Context, waiting func(holder LeaseRecord)) error {
	told := false
	for {
		held, err := l.TryAcquire(ctx)
		if err != nil {
			return err
		}
		if held == nil {
			return nil
		}
		if !told && waiting != nil {
			waiting(*held)
			told = true
		}
		select {
		case <-time.After(l.ttl / 3):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Renew extends the lease; ErrLeaseLost if another process took it.
func (l *Lease) Renew(ctx context.Context) error {
	held, err := l.held(ctx)
	if err != nil {
		return err
	}
	if !held {
		return ErrLeaseLost
	}
	if err := l.write(ctx, l.gen, false); err != nil {
		return err
	}
	l.confirmed.Store(time.Now().UnixNano())
	return nil
}

// Check returns nil when this process may still write: it confirmed its
// lease less than half a TTL ago, or does so now (renewing it). A
// successor takes the lease only a TTL after its last renewal, so a write
// that follows a nil Check within half a TTL cannot land after a takeover,
// whatever clocks drift by less than that; a process that was paused (a
// SIGSTOP, a frozen VM, a long GC) finds out before it writes again.
// ErrLeaseLost when another process holds the lease.
func (l *Lease) Check(ctx context.Context) error {
	if time.Since(time.Unix(0, l.confirmed.Load())) < l.ttl/2 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(time.Unix(0, l.confirmed.Load())) < l.ttl/2 {
		return nil // another writer's check just renewed it
	}
	return l.Renew(ctx)
}

// Fence returns s with every write (Put, PutIfAbsent, Delete) preceded by
// Check, so that a process that lost its lease writes nothing more: the
// store the pipeline writes through while it holds the lease.
func (l *Lease) Fence(s sink.Store) sink.Store { return &fenced{Store: s, l: l} }

// fenced is a store whose writes need the lease (Lease.Fence).
type fenced struct {
	sink.Store
	l *Lease
}

func (f *fenced) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.l.Check(ctx); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return f.Store.Put(ctx, key, r, size)
}

func (f *fenced) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.l.Check(ctx); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return f.Store.PutIfAbsent(ctx, key, r, size)
}

func (f *fenced) Delete(ctx context.Context, key string) error {
	if err := f.l.Check(ctx); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return f.Store.Delete(ctx, key)
}

// held reports whether this process holds the destination's newest lease:
// the generation and the holder, since a generation's object that another
// process wrote, or that is gone or released, is not this lease.
func (l *Lease) held(ctx context.Context) (bool, error) {
	if l.gen == 0 {
		return false, nil
	}
	gen, rec, err := current(ctx, l.s)
	if err != nil {
		return false, err
	}
	return gen == l.gen && rec != nil && rec.Owner == l.owner && !rec.Released, nil
}

// Hold renews the lease every ttl/3 until ctx ends. It returns
// ErrLeaseLost when another process took the lease, or the renewal error
// when the lease could not be renewed before it expired.
func (l *Lease) Hold(ctx context.Context) error {
	expires := time.Now().Add(l.ttl)
	for {
		select {
		case <-time.After(l.ttl / 3):
		case <-ctx.Done():
			return nil
		}
		err := l.Renew(ctx)
		switch {
		case err == nil:
			expires = time.Now().Add(l.ttl)
		case errors.Is(err, ErrLeaseLost):
			return err
		case ctx.Err() != nil:
			return nil
		case time.Now().After(expires):
			return fmt.Errorf("lease expired: could not renew it: %w", err)
		}
	}
}

// ReleaseUnused gives up a lease under which nothing was written: on a
// destination that had no lease before (generation 1) it deletes the
// object, so a run that failed at its start leaves the destination as it
// was; otherwise it is Release.
func (l *Lease) ReleaseUnused(ctx context.Context) error {
	if l.gen != 1 {
		return l.Release(ctx)
	}
	if held, err := l.held(ctx); err != nil || !held {
		return err
	}
	return l.s.Delete(ctx, leaseKey(l.gen))
}

// Release gives the lease up (graceful shutdown), so a successor need not
// wait for it to expire.
func (l *Lease) Release(ctx context.Context) error {
	if held, err := l.held(ctx); err != nil || !held {
		return err
	}
	// Marked released rather than deleted: the generation stays taken, so
	// the next holder's is higher and this one's Renew cannot match it.
	return l.writeRecord(ctx, l.gen, false, true)
}

func (l *Lease) write(ctx context.Context, gen uint64, create bool) error {
	return l.writeRecord(ctx, gen, create, false)
}

// writeRecord writes this process's record under generation gen: expiring
// a ttl from now, or, released, now.
func (l *Lease) writeRecord(ctx context.Context, gen uint64, create, released bool) error {
	host, _ := os.Hostname()
	rec := LeaseRecord{Owner: l.owner, Host: host, PID: os.Getpid(), PIDNamespace: pidNamespace(), ExpiresAt: time.Now().Add(l.ttl).UTC(), Released: released}
	if released {
		rec.ExpiresAt = time.Now().UTC()
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if create {
		return l.s.PutIfAbsent(ctx, leaseKey(gen), bytes.NewReader(b), int64(len(b)))
	}
	return l.s.Put(ctx, leaseKey(gen), bytes.NewReader(b), int64(len(b)))
}

// Copy checks the lease, then copies (sink.Copy): server-side where the
// store can, so a fenced store keeps the backend's copy.
func (f *fenced) Copy(ctx context.Context, src, dst string) error {
	if err := f.l.Check(ctx); err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	return sink.Copy(ctx, f.Store, src, dst)
}
