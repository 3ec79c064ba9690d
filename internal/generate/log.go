package generate

// Log keys.
const (
	logKeyTxns     = "txns"
	logKeyInserts  = "inserts"
	logKeyUpdates  = "updates"
	logKeyDeletes  = "deletes"
	logKeyRate     = "ops_per_sec"
	logKeyTarget   = "target_ops_per_sec"
	logKeySeed     = "seed"
	logKeyDuration = "duration"
)
