package pipeline

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cdc2s3/cdc2s3/sink"
	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// Defaults of Config, after AWS DMS's CdcMaxBatchInterval and
// CdcMinFileSize.
const (
	DefaultSlot           = "cdc2s3"
	DefaultPublication    = "cdc2s3"
	DefaultFlushInterval  = 60 * time.Second
	DefaultFlushSize      = 32 << 20
	DefaultStatusInterval = 10 * time.Second
	// DefaultHeartbeatInterval is how often a heartbeat message is written
	// in the source, so an idle publication still advances the slot.
	DefaultHeartbeatInterval = 30 * time.Second
	// DefaultLeaseTTL is how long a writer's lease on a destination lasts
	// without renewal: how long a successor waits after a crash on
	// another host.
	DefaultLeaseTTL = 30 * time.Second
	// DefaultRefusedTimeout is how long the daemon retries a destination
	// that refuses its writes (access denied, bucket gone, bad
	// credentials) before it stops with the fix.
	DefaultRefusedTimeout = 5 * time.Minute
	spoolMemory           = 8 << 20
)

// Config configures the daemon.
type Config struct {
	Source      string   // PostgreSQL connection string
	Slot        string   // replication slot
	Publication string   // publication, created when missing
	Tables      []string // tables of a new publication; empty means all
	// FlushInterval and FlushSize seal the open files at the first commit
	// after either is reached; FlushSize counts uncompressed value bytes.
	FlushInterval  time.Duration
	FlushSize      int64
	StatusInterval time.Duration
	// StreamLarge asks PostgreSQL 14+ to stream large transactions as they
	// happen (pgoutput protocol version 2, streaming = on) instead of
	// decoding them to its own disk and sending them at commit.
	StreamLarge bool
	// ReconcilePublication lets the daemon change an existing publication
	// (ALTER PUBLICATION ... SET TABLE) to publish exactly Tables, instead
	// of refusing to start when the two differ.
	ReconcilePublication bool
	// Metrics receives the daemon's metrics and health; nil: not exported.
	Metrics *Metrics
	// LeaseTTL is how long the destination's writer lease lasts without
	// renewal (renewed every third of it).
	LeaseTTL time.Duration
	// RefusedTimeout bounds the retries of a destination that refuses
	// requests (sink.ErrRefused): the daemon stops with the fix after it.
	// Outages (errors of the server or the network) are retried without
	// limit.
	RefusedTimeout time.Duration
	// HeartbeatInterval is how often to write a heartbeat (a transactional
	// pg_logical_emit_message) in the source; 0 turns it off.
	HeartbeatInterval time.Duration
	Compression       string
	SnapshotWorkers   int
	// SnapshotChunkSize splits large tables into chunks of about this many
	// bytes on disk for the full load (0: the snapshot package's default).
	SnapshotChunkSize int64
	MaxFileSize       int64
	// DatePartition puts change files in date folders by commit time
	// (nil: at the table folder's top).
	DatePartition *sink.DatePartition
	TempDir       string
	ArraysAsText  bool
	// SnapshotTextCopy reads the full load with COPY's text format instead
	// of its binary format (snapshot.Options.TextCopy).
	SnapshotTextCopy bool
	// ReloadChunkSize is the bytes of values a reload's chunk aims at (0:
	// DefaultReloadChunkSize); ReloadRate caps the bytes per second a
	// reload reads (0: no cap), so it cannot starve the stream.
	ReloadChunkSize int64
	ReloadRate      int64
	// ReloadWorkers is how many tables are reloaded at a time (0: 1), each
	// on connections of its own with at most two chunks in memory.
	ReloadWorkers int
	// InitialLoad is how the first start loads the tables:
	// InitialLoadSnapshot (every table in the new slot's exported
	// snapshot, held until the last is copied), InitialLoadChunks (only
	// the tables without a key in it; those with one through the reload
	// engine's chunks once streaming, so no transaction stays open for
	// longer than one chunk and a crash resumes from the last chunk done)
	// or InitialLoadAuto (the default: the largest tables with a key in
	// chunks, until what is left for the snapshot is at most
	// InitialLoadSnapshotMax bytes on disk).
	InitialLoad string
	// InitialLoadSnapshotMax bounds the table data (pg_table_size) that
	// InitialLoadAuto copies in the exported snapshot (0:
	// DefaultInitialLoadSnapshotMax).
	InitialLoadSnapshotMax int64
	// HistoriesSaved, when set, is told the tables (schema.table) whose
	// schema history a batch changed, once the batch's checkpoint is saved
	// (run --glue-database keeps the Glue Data Catalog in step). It must
	// not block.
	HistoriesSaved func(tables []string)
	// ReloadOnSlotReplaced: when the slot was dropped and created again
	// (its position is beyond anything the destination acknowledged),
	// stream from it and reload every table, instead of refusing to start.
	ReloadOnSlotReplaced bool
}

// Values of Config.InitialLoad.
const (
	InitialLoadSnapshot = "snapshot"
	InitialLoadChunks   = "chunks"
	InitialLoadAuto     = "auto"
)

// DefaultInitialLoadSnapshotMax is how much table data on disk the first
// load copies in the exported snapshot with InitialLoadAuto: a few minutes
// of COPY on a server of some size, so the snapshot's transaction, which
// holds back vacuum and pins WAL, stays short; larger tables with a key
// load in chunks.
const DefaultInitialLoadSnapshotMax = 32 << 30

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// Validate checks the settings that can be checked without connecting.
func (c *Config) Validate() error {
	if c.Source == "" {
		return errors.New("no source: set --source or CDC2S3_SOURCE to a PostgreSQL connection string")
	}
	if c.Slot == "" {
		c.Slot = DefaultSlot
	}
	if !slotName.MatchString(c.Slot) {
		return fmt.Errorf("invalid --slot %q: use 1 to 63 lower-case letters, digits and underscores", c.Slot)
	}
	if c.Publication == "" {
		c.Publication = DefaultPublication
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.FlushInterval < 0 {
		return fmt.Errorf("invalid --flush-interval %s: must be positive", c.FlushInterval)
	}
	if c.FlushSize == 0 {
		c.FlushSize = DefaultFlushSize
	}
	if c.FlushSize < 0 {
		return fmt.Errorf("invalid --flush-size %d: must be positive", c.FlushSize)
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.RefusedTimeout == 0 {
		c.RefusedTimeout = DefaultRefusedTimeout
	}
	if c.RefusedTimeout < 0 {
		return fmt.Errorf("invalid --dest-refused-timeout %s: use a positive duration", c.RefusedTimeout)
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.LeaseTTL < 3*time.Second {
		return fmt.Errorf("invalid --lease-ttl %s: use at least 3s", c.LeaseTTL)
	}
	if c.HeartbeatInterval < 0 {
		return fmt.Errorf("invalid --heartbeat-interval %s: use 0 to turn it off or a positive duration", c.HeartbeatInterval)
	}
	if err := pqfile.ValidCompression(c.Compression); err != nil {
		return fmt.Errorf("invalid --compression: %w", err)
	}
	if c.ReloadChunkSize < 0 {
		return fmt.Errorf("invalid --reload-chunk-size %d: must be positive", c.ReloadChunkSize)
	}
	if c.ReloadWorkers < 0 {
		return fmt.Errorf("invalid --reload-workers %d: use 1 or more", c.ReloadWorkers)
	}
	if c.ReloadRate < 0 {
		return fmt.Errorf("invalid --reload-rate %d: use 0 for no limit or a positive number of bytes per second", c.ReloadRate)
	}
	switch c.InitialLoad {
	case "":
		c.InitialLoad = InitialLoadAuto
	case InitialLoadSnapshot, InitialLoadChunks, InitialLoadAuto:
	default:
		return fmt.Errorf("invalid --initial-load %q: use %s (the largest tables with a key in chunks while streaming, the rest in one exported snapshot), %s (every table in one exported snapshot) or %s (every table with a key in chunks)",
			c.InitialLoad, InitialLoadAuto, InitialLoadSnapshot, InitialLoadChunks)
	}
	if c.InitialLoadSnapshotMax < 0 {
		return fmt.Errorf("invalid --initial-load-snapshot-max %d: use a size such as 32GB", c.InitialLoadSnapshotMax)
	}
	if c.InitialLoadSnapshotMax == 0 {
		c.InitialLoadSnapshotMax = DefaultInitialLoadSnapshotMax
	}
	for _, t := range c.Tables {
		if strings.TrimSpace(t) == "" {
			return errors.New("invalid --tables: empty table name")
		}
	}
	return nil
}
