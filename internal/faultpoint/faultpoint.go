// Package faultpoint kills the process at named points, for crash tests,
// the way etcd's gofail comments do: with CDC2S3_FAULTPOINT=name (or
// name:N to fire at the N-th hit, default 1) set in the environment, Hit
// sends the process SIGKILL when it reaches that point. With
// CDC2S3_FAULTDELAY=name:duration, Delay sleeps that long at a named point
// each time, to widen a window a race test must land in.
//
// Fault points exist only in binaries built with the faultpoints build tag
// (go build -tags faultpoints ./cmd/cdc2s3), as the end-to-end tests build
// theirs. In any other build, release builds included, Hit is an empty
// function the compiler inlines away and CDC2S3_FAULTPOINT is ignored.
// Enabled reports which build this is. In a faultpoints build, Hit costs
// one atomic load while CDC2S3_FAULTPOINT is unset.
package faultpoint

// Points where a crash matters most for exactly-once delivery.
const (
	// AfterUpload is between uploading a batch's files and saving the
	// checkpoint that covers them.
	AfterUpload = "after-upload"
	// AfterCheckpoint is between saving the checkpoint and acknowledging
	// it to PostgreSQL.
	AfterCheckpoint = "after-checkpoint"
)

// BeforeUpload is where the uploader has a batch and has not put it yet:
// a process paused there (Delay, then SIGSTOP) wakes up with a write due.
const BeforeUpload = "before-upload"

// ReloadBeforeHigh is between a reload chunk's read and its high
// watermark: DDL landing there is what the writer must notice (Delay).
const ReloadBeforeHigh = "reload-before-high"

// BeforeUnitDone is where a worker of a distributed load has staged its
// unit's files and not yet recorded the unit done.
const BeforeUnitDone = "before-unit-done"

// DelayEnvVar is the environment variable that sets a Delay point in a
// faultpoints build: name:duration.
const DelayEnvVar = "CDC2S3_FAULTDELAY"

// EnvVar is the environment variable that arms a fault point in a
// faultpoints build: name, or name:N to fire at the N-th hit.
const EnvVar = "CDC2S3_FAULTPOINT"
