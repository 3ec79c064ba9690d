//go:build !faultpoints

package faultpoint

import "testing"

// TestHitOff proves that without the faultpoints tag an armed fault point
// does nothing: in a faultpoints build this Hit would kill the test binary.
func TestHitOff(t *testing.T) {
	if Enabled {
		t.Fatal("Enabled is true in a build without the faultpoints tag")
	}
	for _, point := range []string{AfterUpload, AfterCheckpoint} {
		t.Setenv(EnvVar, point)
		for range 3 {
			Hit(point)
		}
	}
}
