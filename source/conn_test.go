package source

import (
	"net"
	"path/filepath"
	"testing"
)

// TestPaced checks that the replication stream is paced over TCP and not
// over a Unix socket, where a wait holds the walsender up.
func TestPaced(t *testing.T) {
	dial := func(network, addr string) net.Conn {
		t.Helper()
		l, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		// The kernel completes the connection into the listen backlog:
		// no Accept needed.
		c, err := net.Dial(network, l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	if !paced(dial("tcp", "127.0.0.1:0")) {
		t.Error("TCP: not paced")
	}
	if paced(dial("unix", filepath.Join(t.TempDir(), "s"))) {
		t.Error("Unix socket: paced")
	}
}
