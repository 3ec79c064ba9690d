package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/cdc2s3/cdc2s3/sink"
)

// This file reads and writes a distributed load's objects (distplan.go).

// ReadPlan returns the plan id, or the destination's current plan when id
// is empty. A missing plan gives ErrNoPlan.
func ReadPlan(ctx context.Context, store sink.Store, id string) (*Plan, error) {
	if id == "" {
		var cur struct {
			Plan string `json:"plan"`
		}
		ok, err := sink.GetJSON(ctx, store, CurrentPlanKey, &cur)
		if err != nil {
			return nil, err
		}
		if !ok || cur.Plan == "" {
			return nil, fmt.Errorf("%w in %s: run the coordinator first (cdc2s3 snapshot --plan), and the units once it has written the plan", ErrNoPlan, store)
		}
		id = cur.Plan
	}
	if err := CheckPlanID(id); err != nil {
		return nil, err
	}
	p := &Plan{}
	ok, err := sink.GetJSON(ctx, store, planKey(id), p)
	if err != nil {
		return nil, err
	}
	if !ok {
		if cur, err := currentPlan(ctx, store); err == nil && cur != "" && cur != id {
			return nil, fmt.Errorf("%w %q in %s: the current plan is %s (a new plan removes the older ones, whose snapshots are gone); run the units of plan %s", ErrNoPlan, id, store, cur, cur)
		}
		return nil, fmt.Errorf("%w %q in %s: run the coordinator first (cdc2s3 snapshot --plan --plan-id %s), and the units once it has written the plan", ErrNoPlan, id, store, id)
	}
	if p.Format != planFormat {
		return nil, fmt.Errorf("plan %s has format %d, this cdc2s3 reads %d: run workers of the coordinator's version", id, p.Format, planFormat)
	}
	return p, nil
}

// currentPlan returns the id current.json names, "" when none.
func currentPlan(ctx context.Context, store sink.Store) (string, error) {
	var cur struct {
		Plan string `json:"plan"`
	}
	_, err := sink.GetJSON(ctx, store, CurrentPlanKey, &cur)
	return cur.Plan, err
}

// writePlan publishes a plan: plan.json, then current.json, then
// units.json, whose appearance says the plan is complete.
func writePlan(ctx context.Context, store sink.Store, p *Plan) error {
	if err := sink.PutJSON(ctx, store, planKey(p.ID), p); err != nil {
		return err
	}
	if err := sink.PutJSON(ctx, store, CurrentPlanKey, map[string]string{"plan": p.ID}); err != nil {
		return err
	}
	items := make([]UnitItem, len(p.Units))
	for i, u := range p.Units {
		items[i] = UnitItem{Plan: p.ID, Unit: u.N}
	}
	return sink.PutJSON(ctx, store, unitsKey(p.ID), items)
}

// removeOtherPlans deletes every object under LoadPrefix but current.json
// and the folder of plan keep: the staged files and records of earlier
// plans, committed or abandoned.
func removeOtherPlans(ctx context.Context, store sink.Store, keep string) error {
	objs, err := store.List(ctx, LoadPrefix)
	if err != nil {
		return fmt.Errorf("list %s: %w", LoadPrefix, err)
	}
	for _, o := range objs {
		if o.Key == CurrentPlanKey || strings.HasPrefix(o.Key, planDir(keep)) {
			continue
		}
		if err := store.Delete(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}

// removePrefix deletes every object under prefix.
func removePrefix(ctx context.Context, store sink.Store, prefix string) error {
	objs, err := store.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	for _, o := range objs {
		if err := store.Delete(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}

// countKeys returns how many objects are under prefix.
func countKeys(ctx context.Context, store sink.Store, prefix string) (int, error) {
	objs, err := store.List(ctx, prefix)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	return len(objs), nil
}

// readDone returns the done record of unit n, nil when there is none.
func readDone(ctx context.Context, store sink.Store, id string, n int) (*UnitDone, error) {
	d := &UnitDone{}
	ok, err := sink.GetJSON(ctx, store, doneKey(id, n), d)
	if err != nil || !ok {
		return nil, err
	}
	return d, nil
}

// firstFailure returns the first unit recorded as failed, nil when none.
func firstFailure(ctx context.Context, store sink.Store, id string) (*UnitFailed, error) {
	objs, err := store.List(ctx, failedDir(id))
	if err != nil || len(objs) == 0 {
		return nil, err
	}
	f := &UnitFailed{}
	if _, err := sink.GetJSON(ctx, store, objs[0].Key, f); err != nil {
		return nil, err
	}
	return f, nil
}

// isCommitted reports whether plan id was committed.
func isCommitted(ctx context.Context, store sink.Store, id string) (bool, error) {
	return sink.GetJSON(ctx, store, committedKey(id), &Committed{})
}

// randomID returns n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
