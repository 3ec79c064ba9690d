package testenv

import (
	"flag"
	"strings"
	"testing"
)

// Integration skips tb when the tests run with -short (make test-unit): tb
// needs the services or programs named by needs, such as "PostgreSQL",
// "versitygw" or "DuckDB (node/npm)", and -short runs no servers. The skip
// message names them. Without -short it does nothing, so an integration
// test never skips silently: a service that cannot start fails it.
//
// NewPostgres and NewS3 call it; tests that start services otherwise (in
// TestMain, or through a helper of their own) call it first.
func Integration(tb testing.TB, needs ...string) {
	tb.Helper()
	if testing.Short() {
		tb.Skipf("integration: needs %s; run make test", strings.Join(needs, ", "))
	}
}

// Short reports whether the tests run with -short. Unlike testing.Short it
// may be called in TestMain before m.Run, which parses the flags later: it
// parses them first if that has not happened. A TestMain that starts
// services or builds programs does neither when Short reports true, and its
// tests call Integration.
func Short() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	return testing.Short()
}
