package catalog

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/sink"
)

// GlueKeeper keeps a Glue database in step with a running daemon's
// destination (run --glue-database): every table once at the start, then
// the tables whose schema history changed, as the uploader reports them.
// It runs beside the stream and never holds it up: Changed only records
// the names, and a Glue that fails is tried again later, the names kept.
type GlueKeeper struct {
	api   GlueAPI
	db    string
	store sink.Store
	log   *slog.Logger
	// Retry is how long to wait after a failed sync (default a minute).
	Retry time.Duration

	mu      sync.Mutex
	pending map[string]bool // schema.table labels to sync
	all     bool            // every table is due (the start)
	wake    chan struct{}
}

// NewGlueKeeper returns a keeper of database db for the destination store.
func NewGlueKeeper(api GlueAPI, db string, store sink.Store, log *slog.Logger) *GlueKeeper {
	return &GlueKeeper{api: api, db: db, store: store, log: log, Retry: time.Minute,
		pending: map[string]bool{}, all: true, wake: make(chan struct{}, 1)}
}

// Changed records that the schema histories of tables (schema.table)
// changed in the destination.
func (k *GlueKeeper) Changed(tables []string) {
	if len(tables) == 0 {
		return
	}
	k.mu.Lock()
	for _, t := range tables {
		k.pending[t] = true
	}
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Run syncs what is due until ctx is done.
func (k *GlueKeeper) Run(ctx context.Context) {
	for {
		k.mu.Lock()
		all, names := k.all, slices.Sorted(maps.Keys(k.pending))
		k.all, k.pending = false, map[string]bool{}
		k.mu.Unlock()
		if all || len(names) > 0 {
			if err := k.sync(ctx, all, names); err != nil {
				if ctx.Err() != nil {
					return
				}
				k.log.Warn("updating the Glue Data Catalog failed; trying again", logkey.Database, k.db, logkey.Error, err, logkey.Delay, k.Retry)
				k.mu.Lock()
				k.all = k.all || all
				for _, n := range names {
					k.pending[n] = true
				}
				k.mu.Unlock()
				select {
				case <-time.After(k.Retry):
				case <-ctx.Done():
					return
				}
				continue
			}
		}
		select {
		case <-k.wake:
		case <-ctx.Done():
			return
		}
	}
}

// sync writes every table (all) or the named ones.
func (k *GlueKeeper) sync(ctx context.Context, all bool, names []string) error {
	var only []string
	if !all {
		only = names
	}
	tables, err := Plan(ctx, k.store, only)
	if err != nil {
		return err
	}
	n, err := SyncGlue(ctx, k.api, k.db, k.store.String(), tables)
	if err != nil {
		return err
	}
	if n.Created+n.Updated > 0 {
		k.log.Info("Glue Data Catalog updated", logkey.Database, k.db, logkey.Tables, len(tables), logkey.Created, n.Created, logkey.Updated, n.Updated)
	}
	return nil
}
