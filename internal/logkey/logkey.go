// Package logkey names the keys of cdc2s3's structured log lines, so that
// one quantity has one key in every package (operators filter and alert on
// them) and a typo is a compile error rather than a new key.
package logkey

// Keys of log attributes. Values keep their units in the name where there
// is one (bytes, seconds); LSNs print as PostgreSQL does (0/16B3748).
const (
	Error                  = "error"                   // the error, redacted
	Fix                    = "fix"                     // what the operator can run to fix a warning
	What                   = "what"                    // the operation being retried
	Attempt                = "attempt"                 // retry attempt, from 1
	Delay                  = "delay"                   // wait before the next attempt
	Created                = "created"                 // a number of objects created
	Updated                = "updated"                 // a number of objects updated
	Timeout                = "timeout"                 // a deadline that passed
	Duration               = "duration"                // how long something took
	Addr                   = "addr"                    // a listening address
	Dir                    = "dir"                     // a local directory
	Dest                   = "dest"                    // the destination, password-free
	Slot                   = "slot"                    // replication slot name
	Publication            = "publication"             // publication name
	Database               = "database"                // database name
	PID                    = "pid"                     // a server or local process id
	Holder                 = "holder"                  // the process holding the lease
	Expires                = "expires"                 // when a lease expires
	Protocol               = "protocol"                // the pgoutput protocol version option
	For                    = "for"                     // the FOR clause of a created publication
	From                   = "from"                    // the position streaming starts from
	LSN                    = "lsn"                     // an LSN: a commit's end, a batch's acknowledgement
	Checkpoint             = "checkpoint"              // the destination's checkpoint LSN
	ConfirmedFlushLSN      = "confirmed_flush_lsn"     // the slot's acknowledged position
	Acknowledged           = "acknowledged"            // the LSN last acknowledged to PostgreSQL
	ServerWAL              = "server_wal"              // the server's WAL end
	LagBytes               = "lag_bytes"               // WAL not yet acknowledged
	LagSeconds             = "lag_seconds"             // time since the acknowledged position moved
	RetainedBytes          = "retained_bytes"          // WAL a slot keeps
	Snapshot               = "snapshot"                // an exported snapshot's name
	Table                  = "table"                   // schema.table
	Tables                 = "tables"                  // a number of tables
	Column                 = "column"                  // a column name
	Columns                = "columns"                 // column names
	Rows                   = "rows"                    // a number of rows
	Files                  = "files"                   // a number of files
	Bytes                  = "bytes"                   // a size in bytes
	BytesOnDisk            = "bytes_on_disk"           // tables' size on the server
	Count                  = "count"                   // a number of values
	Chunks                 = "chunks"                  // a number of key-range chunks
	Chunked                = "chunked"                 // a number of tables loaded in chunks
	ChunkedTables          = "chunked_tables"          // the tables loaded in chunks (schema.table)
	InitialLoad            = "initial_load"            // how the first load copies the tables (run --initial-load)
	Chunk                  = "chunk"                   // a chunk's number in its table
	Relation               = "relation"                // a partition or inheritance child a chunk reads
	Relations              = "relations"               // a number of such relations
	Blocks                 = "blocks"                  // a chunk's block range
	Plan                   = "plan"                    // a distributed load's plan id
	Unit                   = "unit"                    // a unit's number in its plan
	Units                  = "units"                   // a number of units
	Reload                 = "reload"                  // a reload's id (docs/reload.md)
	Reason                 = "reason"                  // why something is done
	Waited                 = "waited"                  // how long something has been waited for
	Request                = "request"                 // a reload request's object key
	Workers                = "workers"                 // a number of parallel workers
	Pct                    = "pct"                     // a percentage done
	Of                     = "of"                      // a total, beside a count done
	Eta                    = "eta"                     // estimated time left
	Xid                    = "xid"                     // a transaction id
	Seq                    = "seq"                     // a row's position in its transaction (_cdc_seq)
	Messages               = "messages"                // a number of pgoutput messages
	AbortedSubtransactions = "aborted_subtransactions" // subtransactions rolled back in a streamed one

	Txns    = "txns"               // generate: transactions committed
	Inserts = "inserts"            // generate: rows inserted
	Updates = "updates"            // generate: rows updated
	Deletes = "deletes"            // generate: rows deleted
	Rate    = "ops_per_sec"        // generate: operations per second achieved
	Target  = "target_ops_per_sec" // generate: operations per second asked for
	Seed    = "seed"               // generate: the random seed, to repeat a run

	Phase      = "phase"       // validate: what a table's comparison is doing
	SourceRows = "source_rows" // validate: rows of a table in the source
	DestRows   = "dest_rows"   // validate: rows of a table's current state in the destination
	Missing    = "missing"     // validate: rows in the source only
	Extra      = "extra"       // validate: rows in the destination only
	Mismatched = "mismatched"  // validate: rows on both sides with other values
)
