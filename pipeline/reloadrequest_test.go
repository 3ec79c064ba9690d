package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/cdc2s3/cdc2s3/sink"
)

// requestStore holds one reload request; getErr, when set, is what reading
// it returns (a destination failing for a moment).
type requestStore struct {
	sink.Store
	body    string
	getErr  error
	deleted bool
}

func (s *requestStore) Get(context.Context, string) (io.ReadCloser, error) {
	if s.getErr != nil {
		return nil, s.getErr
	}
	return io.NopCloser(strings.NewReader(s.body)), nil
}

func (s *requestStore) Delete(context.Context, string) error { s.deleted = true; return nil }

// TestRequestReadFails checks that a reload request is deleted only when
// it is not valid JSON, not when reading it failed: the engine deleted it
// on any error, so an S3 hiccup lost the request.
func TestRequestReadFails(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	flaky := &requestStore{body: `{"tables": ["public.t"]}`, getErr: errors.New("connection reset by peer")}
	e := newReloadEngine(Config{}, flaky, nil, newReloadShared(), nil, log)
	if err := e.request(ctx, ReloadRequestPrefix+"r.json"); err == nil || flaky.deleted {
		t.Errorf("a failed read: error %v, request deleted %v; want the error and the request kept for the next poll", err, flaky.deleted)
	}
	bad := &requestStore{body: `{"tables": [`}
	e = newReloadEngine(Config{}, bad, nil, newReloadShared(), nil, log)
	if err := e.request(ctx, ReloadRequestPrefix+"r.json"); err != nil || !bad.deleted {
		t.Errorf("a request that is not JSON: error %v, deleted %v; want it deleted", err, bad.deleted)
	}
}
