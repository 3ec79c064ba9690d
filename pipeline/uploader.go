package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cdc2s3/cdc2s3/internal/faultpoint"
	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/internal/retry"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/sink"
)

// uploader owns the destination's state: for each batch the writer hands
// over it puts the schema histories and the files, then saves the
// checkpoint, then publishes the durable LSN that the receiver
// acknowledges.
type uploader struct {
	cfg    Config
	store  sink.Store
	states *lsnstore.Store
	state  lsnstore.State // the checkpoint last saved
	log    *slog.Logger
	h      *handoff
	// current is the batch being uploaded: its files not uploaded yet are
	// removed by discard when the stream fails.
	current *batch
}

// discard removes the local files of a batch whose upload did not finish.
// Only after every stage has returned.
func (u *uploader) discard() {
	if u.current != nil {
		removeFiles(u.current.files)
		u.current = nil
	}
}

// run is the uploading loop; it returns when the writer closes the batch
// channel or an upload fails for good. Between batches it records a
// higher AckLimit when the receiver asks for one.
func (u *uploader) run(ctx context.Context) error {
	for {
		select {
		case b, ok := <-u.h.batches:
			if !ok {
				return nil
			}
			if err := u.upload(ctx, b); err != nil {
				return err
			}
		case <-u.h.limitSignal:
			if err := u.raiseLimit(ctx); err != nil {
				return err
			}
		}
	}
}

// upload puts one batch, saves the checkpoint that covers it (and an
// AckLimit at least as high) and publishes the durable LSN.
func (u *uploader) upload(ctx context.Context, b *batch) error {
	m := u.cfg.Metrics
	u.current = b
	start := time.Now()
	m.uploadSince.Store(start.UnixNano())
	faultpoint.Delay(faultpoint.BeforeUpload)
	rows, err := u.put(ctx, b)
	if err != nil {
		return err
	}
	faultpoint.Hit(faultpoint.AfterUpload)
	if b.ack > u.state.Checkpoint {
		st := u.state
		st.Checkpoint = b.ack
		st.AckLimit = max(st.AckLimit, b.ack)
		st.Reloads = b.reloads
		if err := u.save(ctx, st); err != nil {
			return err
		}
	}
	faultpoint.Hit(faultpoint.AfterCheckpoint)
	if u.cfg.HistoriesSaved != nil && len(b.histories) > 0 {
		names := make([]string, len(b.histories))
		for i, h := range b.histories {
			names[i] = h.Schema + "." + h.Table
		}
		u.cfg.HistoriesSaved(names)
	}
	u.current = nil
	u.h.durable.Store(b.ack)
	u.h.wake() // acknowledge now, not at the next status tick
	m.uploadSince.Store(0)
	if len(b.files) > 0 {
		u.log.Info("uploaded", logkey.Files, len(b.files), logkey.Rows, rows, logkey.LSN, b.ack, logkey.Duration, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// raiseLimit saves the AckLimit the receiver asks for (an idle position
// to acknowledge), then lets the receiver acknowledge up to it.
func (u *uploader) raiseLimit(ctx context.Context) error {
	want := u.h.limitWanted.Load()
	if want <= u.state.AckLimit {
		return nil
	}
	st := u.state
	st.AckLimit = want
	if err := u.save(ctx, st); err != nil {
		return err
	}
	u.h.wake()
	return nil
}

// save saves st as the destination's state, with retries, and publishes
// its AckLimit.
func (u *uploader) save(ctx context.Context, st lsnstore.State) error {
	if err := u.retry(ctx, "save checkpoint", func() error { return u.states.Save(ctx, st) }); err != nil {
		return err
	}
	u.state = st
	u.h.ackLimit.raise(st.AckLimit)
	return nil
}

// put uploads a batch's schema histories, then its files (removing each
// local copy once it is in the destination), and returns the rows
// uploaded.
func (u *uploader) put(ctx context.Context, b *batch) (int64, error) {
	m := u.cfg.Metrics
	for _, h := range b.histories {
		if err := u.retry(ctx, "save schema history", func() error { return u.states.SaveHistory(ctx, h) }); err != nil {
			return 0, err
		}
	}
	var rows int64
	for _, f := range b.files {
		start := time.Now()
		if err := u.retry(ctx, "upload", func() error { return sink.PutFile(ctx, u.store, f.key, f.path) }); err != nil {
			return 0, fmt.Errorf("%s: %w", f.key, err)
		}
		m.uploadSeconds.Observe(time.Since(start).Seconds())
		m.files.WithLabelValues(f.table).Inc()
		os.Remove(f.path)
		rows += f.rows
	}
	return rows, nil
}

// uploadRetry is how a destination operation is retried: without a limit,
// since an S3 outage must delay the pipeline (the walsender is kept alive
// meanwhile), never lose or skip a batch; with capped exponential backoff
// from 200 ms to 30 s and up to half again of jitter. A destination that
// refuses requests is retried for Config.RefusedTimeout.
var uploadRetry = retry.Policy{Base: 200 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.5}

// retry runs fn by uploadRetry, logging and counting each retry. A
// checkpoint that would move backwards, or a key no destination can hold,
// is not retried; a destination that has refused requests for
// RefusedTimeout stops the daemon.
func (u *uploader) retry(ctx context.Context, what string, fn func() error) error {
	p := uploadRetry
	var refusedSince time.Time
	p.Permanent = func(err error) bool {
		if !errors.Is(err, sink.ErrRefused) {
			refusedSince = time.Time{}
			return errors.Is(err, lsnstore.ErrBackwards) || errors.Is(err, sink.ErrInvalidKey) || errors.Is(err, lsnstore.ErrLeaseLost)
		}
		if refusedSince.IsZero() {
			refusedSince = time.Now()
		}
		return time.Since(refusedSince) >= u.cfg.RefusedTimeout
	}
	p.OnRetry = func(attempt int, wait time.Duration, err error) {
		u.log.Warn("retrying", logkey.What, what, logkey.Attempt, attempt, logkey.Delay, wait.Round(time.Millisecond), logkey.Error, err)
		u.cfg.Metrics.retries.WithLabelValues(what).Inc()
	}
	if err := p.Do(ctx, fn); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if errors.Is(err, sink.ErrRefused) {
			return fmt.Errorf("%s: stopped after %s of refusals (--dest-refused-timeout; nothing is acknowledged beyond what is uploaded, so a restart resumes): %w",
				what, u.cfg.RefusedTimeout, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
