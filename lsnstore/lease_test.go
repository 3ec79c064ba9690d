package lsnstore

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cdc2s3/cdc2s3/sink/localfs"
)

// TestLeaseGenerationsNotReused: a released lease keeps its generation, so
// the next holder's is higher and a paused old holder that comes back
// cannot renew into it (before, Release deleted the object, the next
// holder took the same generation again, and the old holder's Renew,
// which compared only the number, succeeded: two writers).
func TestLeaseGenerationsNotReused(t *testing.T) {
	ctx := context.Background()
	store, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := NewLease(store, 30*time.Second), NewLease(store, 30*time.Second)
	if held, err := a.TryAcquire(ctx); err != nil || held != nil {
		t.Fatalf("a: %v, %v", held, err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if rec, err := ReadLease(ctx, store); err != nil || rec != nil {
		t.Errorf("ReadLease after a release = %+v, %v; want none", rec, err)
	}
	if held, err := b.TryAcquire(ctx); err != nil || held != nil {
		t.Fatalf("b: %v, %v", held, err)
	}
	if b.gen <= a.gen {
		t.Errorf("b took generation %d after a released %d: reused", b.gen, a.gen)
	}
	if err := a.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("a.Renew after b took over = %v, want ErrLeaseLost", err)
	}
	if err := b.Renew(ctx); err != nil {
		t.Errorf("b.Renew = %v", err)
	}
}

// TestLeaseRenewChecksHolder: a generation's object written by another
// process is not this process's lease, whatever its number.
func TestLeaseRenewChecksHolder(t *testing.T) {
	ctx := context.Background()
	store, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := NewLease(store, 30*time.Second)
	if held, err := a.TryAcquire(ctx); err != nil || held != nil {
		t.Fatalf("a: %v, %v", held, err)
	}
	other, _ := json.Marshal(LeaseRecord{Owner: "elsewhere/1/x", Host: "elsewhere", PID: 1, ExpiresAt: time.Now().Add(time.Minute)})
	if err := store.Put(ctx, leaseKey(a.gen), strings.NewReader(string(other)), int64(len(other))); err != nil {
		t.Fatal(err)
	}
	if err := a.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Renew over another holder's record = %v, want ErrLeaseLost", err)
	}
}

// TestDeadHereNeedsSameNamespace: a holder on a host of the same name but
// in another PID namespace (another container) is not judged by this
// namespace's process table.
func TestDeadHereNeedsSameNamespace(t *testing.T) {
	host, _ := os.Hostname()
	gone := 1 << 22 // above Linux's default pid_max: no such process here
	if !deadHere(&LeaseRecord{Host: host, PID: gone, PIDNamespace: pidNamespace()}) {
		t.Errorf("a missing process in this namespace is not judged dead")
	}
	if deadHere(&LeaseRecord{Host: host, PID: gone, PIDNamespace: "pid:[1]"}) {
		t.Errorf("a process of another PID namespace is judged dead by this one's process table")
	}
	if deadHere(&LeaseRecord{Host: host, PID: gone}) && pidNamespace() != "" {
		t.Errorf("a record without a namespace (an older cdc2s3, or another system) is judged dead")
	}
}

// TestLeaseReleaseUnused: a run that wrote nothing under the first lease
// of a destination leaves no lease object behind; under a later
// generation the object stays, marked released, so generations still
// only grow.
func TestLeaseReleaseUnused(t *testing.T) {
	ctx := context.Background()
	store, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := NewLease(store, 30*time.Second)
	if _, err := a.TryAcquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.ReleaseUnused(ctx); err != nil {
		t.Fatal(err)
	}
	if objs, err := store.List(ctx, LeasePrefix); err != nil || len(objs) != 0 {
		t.Fatalf("after ReleaseUnused of generation 1: %v, %v; want nothing", objs, err)
	}
	b := NewLease(store, 30*time.Second)
	if _, err := b.TryAcquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	c := NewLease(store, 30*time.Second)
	if _, err := c.TryAcquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.ReleaseUnused(ctx); err != nil {
		t.Fatal(err)
	}
	if gen, rec, err := current(ctx, store); err != nil || gen != c.gen || rec == nil || !rec.Released {
		t.Errorf("after ReleaseUnused of generation %d: generation %d, %+v, %v; want it kept, released", c.gen, gen, rec, err)
	}
}

// TestLeaseFence: a holder paused past its lease (it saw it held longer
// than half a TTL ago) while another took over writes nothing more
// through its fenced store: the write finds the lease lost and is not
// made. Within half a TTL of a confirmation, writes go through without a
// remote check.
func TestLeaseFence(t *testing.T) {
	ctx := context.Background()
	store, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 200 * time.Millisecond
	a, b := NewLease(store, ttl), NewLease(store, ttl)
	if held, err := a.TryAcquire(ctx); err != nil || held != nil {
		t.Fatalf("a: %v, %v", held, err)
	}
	fa := a.Fence(store)
	if err := fa.Put(ctx, "a/first", strings.NewReader("x"), 1); err != nil {
		t.Fatalf("a's write while it holds the lease: %v", err)
	}
	time.Sleep(ttl + 50*time.Millisecond) // a is "paused": no renewal, the lease expires
	if held, err := b.TryAcquire(ctx); err != nil || held != nil {
		t.Fatalf("b did not take the expired lease: %v, %v", held, err)
	}
	for name, write := range map[string]func() error{
		"Put":         func() error { return fa.Put(ctx, "a/late", strings.NewReader("x"), 1) },
		"PutIfAbsent": func() error { return fa.PutIfAbsent(ctx, "a/late", strings.NewReader("x"), 1) },
		"Delete":      func() error { return fa.Delete(ctx, "a/first") },
	} {
		if err := write(); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("a's %s after b took over: %v, want ErrLeaseLost", name, err)
		}
	}
	objs, err := store.List(ctx, "a/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Key != "a/first" {
		t.Errorf("after the takeover the folder holds %v, want only a/first", objs)
	}
	if err := b.Fence(store).Put(ctx, "a/b", strings.NewReader("x"), 1); err != nil {
		t.Errorf("b's write: %v", err)
	}
}
