//go:build !faultpoints

package faultpoint

// Enabled reports whether this binary was built with the faultpoints tag,
// so that Hit can kill it. It is false in this build.
const Enabled = false

// Hit does nothing: this binary was built without the faultpoints tag, so
// it has no fault points and ignores CDC2S3_FAULTPOINT.
func Hit(point string) {}

// Delay does nothing: this binary was built without the faultpoints tag,
// and ignores CDC2S3_FAULTDELAY.
func Delay(point string) {}
