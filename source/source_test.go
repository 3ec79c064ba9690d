package source

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestTransient(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code, Message: "x"}) }
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{pg("08006"), true},  // connection failure
		{pg("57P01"), true},  // admin shutdown
		{pg("57P03"), true},  // cannot connect now
		{pg("53300"), true},  // too many connections
		{pg("28P01"), false}, // bad password: a restart does not help
		{pg("42P01"), false}, // undefined table
		{fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("receive: %w", io.EOF), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{fmt.Errorf("write: %w", syscall.EPIPE), true},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{Explain(fmt.Errorf("x: %w", io.ErrUnexpectedEOF), nil), true}, // a hint keeps the cause
		{ErrSlotExists, false},
		{errors.New("conn closed"), false}, // text alone decides nothing
		{errors.New("unexpected EOF"), false},
	}
	for _, c := range cases {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %t, want %t", c.err, got, c.want)
		}
	}
}

func TestSlotUsable(t *testing.T) {
	ok := Slot{Name: "s", Type: "logical", Plugin: "pgoutput", Here: true, WALStatus: "reserved", ConfirmedFlushLSN: 0x100}
	if err := ok.Usable(); err != nil {
		t.Fatalf("usable slot: %v", err)
	}
	for _, c := range []struct {
		edit func(*Slot)
		want string
	}{
		{func(s *Slot) { s.Here, s.Database = false, "other" }, `database "other"`},
		{func(s *Slot) { s.WALStatus = "lost" }, "invalidated"},
		{func(s *Slot) { s.Plugin = "wal2json" }, "not a pgoutput"},
		{func(s *Slot) { s.Type, s.Plugin = "physical", "" }, "not a pgoutput"},
		{func(s *Slot) { s.ConfirmedFlushLSN = 0 }, "not a pgoutput"},
	} {
		s := ok
		c.edit(&s)
		if err := s.Usable(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: Usable() = %v, want %q", s, err, c.want)
		}
	}
}

func TestPublicationTarget(t *testing.T) {
	if got := PublicationTarget(nil); got != "ALL TABLES" {
		t.Errorf("no tables: %q", got)
	}
	if got, want := PublicationTarget([]string{"a", " s.b ", `x"y.z`}), `TABLE "public"."a", "s"."b", "x""y"."z"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
