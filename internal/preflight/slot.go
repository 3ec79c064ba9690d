package preflight

import (
	"fmt"
	"time"

	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/source"
)

// SlotState judges the slot cdc2s3 would use: missing (the first run
// creates it), unusable (another database, not pgoutput), invalidated
// (wal_status lost) or about to be, in use, and how much WAL it keeps.
func SlotState(name string, s *source.Slot) Result {
	r := Result{Name: NameSlot, Status: OK}
	if s == nil {
		r.Status, r.Detail = Info, fmt.Sprintf("replication slot %s does not exist: the first run creates it, with a full load", name)
		return r
	}
	switch {
	case !s.Here && s.Database != "":
		r.Status = Fail
		r.Detail = fmt.Sprintf("replication slot %s belongs to database %s, not this one", name, s.Database)
		r.Fix = "choose another --slot (slot names are unique per server)"
		return r
	case s.Type != "logical" || s.Plugin != "pgoutput":
		r.Status = Fail
		r.Detail = fmt.Sprintf("replication slot %s is a %s slot with plugin %q, not a pgoutput logical slot", name, s.Type, s.Plugin)
		r.Fix = "choose another --slot"
		return r
	}
	state := "inactive"
	if s.Active {
		state = fmt.Sprintf("active (PID %d)", s.PID)
	}
	r.Detail = fmt.Sprintf("replication slot %s exists, %s, wal_status %s; confirmed_flush_lsn %s is %s behind the server; restart_lsn %s retains %s of WAL",
		name, state, s.WALStatus, s.ConfirmedFlushLSN, FormatBytes(s.LagBytes), s.RestartLSN, FormatBytes(s.RetainedBytes))
	switch s.WALStatus {
	case "lost":
		r.Status = Fail
		r.Detail = fmt.Sprintf("replication slot %s is invalidated (wal_status lost): it fell more than max_slot_wal_keep_size behind, and the changes since its position are gone", name)
		r.Fix = "drop it (cdc2s3 drop --slot " + name + ") and start a new full load into a new --dest; see docs/operations.md, \"The slot is lost\""
	case "unreserved":
		r.Status = Warn
		r.Detail += "; it keeps more WAL than max_slot_wal_keep_size and is invalidated at the next checkpoint unless its consumer catches up"
		r.Fix = "start cdc2s3 on it now, or raise max_slot_wal_keep_size"
	default:
		if s.Active {
			r.Status = Info
			r.Detail += "; a running cdc2s3 (or another client) is using it"
		}
	}
	return r
}

// Plan says what the next cdc2s3 run would do with this slot and the
// destination's state, by the rules of docs/operations.md ("What a start
// does"), and fails where run would refuse to start.
func Plan(o Options, slot *source.Slot, st lsnstore.State, haveState bool) Result {
	r := Result{Name: NameStart, Status: OK}
	ours := haveState && st.Slot == o.Slot
	switch {
	case slot != nil && ours && st.SnapshotDone && st.SlotAhead(slot.ConfirmedFlushLSN):
		r.Status = Fail
		r.Detail = fmt.Sprintf("replication slot %s was acknowledged up to %s, beyond anything the destination's daemon acknowledged (%s): it was dropped and created again, or another client consumed it; changes are missing and run refuses to start",
			o.Slot, slot.ConfirmedFlushLSN, st.AckLimit)
		r.Fix = "start a new full load into a new --dest (cdc2s3 drop --slot " + o.Slot + " first); see docs/operations.md, \"The slot was replaced\""
	case slot != nil && ours && st.SnapshotDone:
		r.Detail = fmt.Sprintf("the next run resumes streaming from slot %s at %s (the destination's checkpoint is %s)", o.Slot, slot.ConfirmedFlushLSN, st.Checkpoint)
	case slot != nil && ours:
		r.Status = Info
		r.Detail = fmt.Sprintf("the previous full load into the destination did not finish: the next run drops slot %s and starts a new full load", o.Slot)
	case slot == nil && (!haveState || !st.SnapshotDone):
		r.Detail = fmt.Sprintf("the first run creates slot %s and makes a full load into the destination", o.Slot)
	case slot == nil:
		r.Status = Fail
		r.Detail = fmt.Sprintf("replication slot %s does not exist, but the destination holds a finished load (slot %s, checkpoint %s): the changes since then are gone from the WAL, and run refuses to start",
			o.Slot, st.Slot, st.Checkpoint)
		r.Fix = "start over with a new full load into a new --dest (old change files would bring back rows deleted since); see docs/operations.md, \"The slot is lost\""
		if st.Slot != o.Slot {
			r.Fix = fmt.Sprintf("if the destination is streamed from slot %s, pass --slot %s; else ", st.Slot, st.Slot) + r.Fix
		}
	default:
		r.Status = Fail
		what := "no cdc2s3 state"
		if haveState {
			what = "the state of slot " + st.Slot
		}
		r.Detail = fmt.Sprintf("replication slot %s exists, but the destination holds %s: run refuses to start", o.Slot, what)
		r.Fix = fmt.Sprintf("choose another --slot, or drop slot %s if nothing uses it (cdc2s3 drop --slot %s)", o.Slot, o.Slot)
	}
	return r
}

// age formats how long ago t was, to the second.
func age(t time.Time) string {
	return time.Since(t).Round(time.Second).String()
}
