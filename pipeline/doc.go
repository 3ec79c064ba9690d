// Package pipeline is the cdc2s3 daemon: it holds the destination's
// writer lease, sets up the session (publication, slot, and the full load
// when the slot is new), then streams the slot's pgoutput changes into
// per-table Parquet files in the destination, acknowledging an LSN to
// PostgreSQL only once every change at or below it is uploaded.
//
// A stream is three goroutines, each owning its own state, joined by one
// handoff struct whose fields say which stage writes them:
//
//		PostgreSQL ──replication──▶ receiver ──txns──▶ writer ──batches──▶ uploader ──▶ destination
//		    ▲                           │                                      │
//		    └──── standby status ◀──────┴───────────── durable LSN ◀───────────┘
//
//	  - the receiver (receiver.go) owns the replication connection: it
//	    frames messages (decoder.ReadFrame), stages each transaction in a
//	    spool, hands committed ones to the writer and acknowledges the
//	    durable position;
//	  - the writer (writer.go, tables.go) owns the catalog connection and
//	    the open files: it decodes each committed transaction, takes the
//	    catalog's decisions (keys, types, missing values), writes rows, and
//	    at each flush hands a batch of sealed files to the uploader;
//	  - the uploader (uploader.go) puts histories and files, saves the
//	    checkpoint, and publishes the durable LSN.
//
// Beside them the reload engine (reload.go, reloadrows.go) reloads tables
// while the stream goes on: it writes watermarks into the WAL, which reach
// the writer through the stream, and reads each chunk in a temporary
// slot's snapshot for the writer to take at the chunk's high watermark
// (docs/reload.md).
//
// Run (run.go) holds the lease and reconnects after a lost connection;
// session.go opens a session and decides between resuming and a full
// load. docs/architecture.md draws the same with the path of one change.
package pipeline
