package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
)

// ReadLease returns the record of the destination's newest lease object
// (the one a running daemon holds and renews), or nil when there is none or
// it was released. It only reads: expiry is for the caller to judge.
func ReadLease(ctx context.Context, store sink.Store) (*lsnstore.LeaseRecord, error) {
	objs, err := store.List(ctx, lsnstore.LeasePrefix)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	var newest string
	var gen uint64
	for _, o := range objs {
		name := strings.TrimSuffix(strings.TrimPrefix(o.Key, lsnstore.LeasePrefix), ".json")
		if g, err := strconv.ParseUint(name, 10, 64); err == nil && g > gen {
			gen, newest = g, o.Key
		}
	}
	if newest == "" {
		return nil, nil
	}
	rc, err := store.Get(ctx, newest)
	if errors.Is(err, sink.ErrNotFound) {
		return nil, nil // released since the listing
	}
	if err != nil {
		return nil, fmt.Errorf("read lease: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read lease: %w", err)
	}
	var rec lsnstore.LeaseRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, nil // unreadable: the daemon treats it as released too
	}
	return &rec, nil
}
