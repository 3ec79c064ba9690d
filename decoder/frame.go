package decoder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
)

// Kind is what a pgoutput message means to whoever stages transactions:
// a boundary, or a message to keep until the transaction commits.
type Kind uint8

// Kinds of pgoutput message, protocol versions 1 and 2.
const (
	// KindSkip is a message that carries nothing to keep: an origin, or a
	// non-transactional logical message outside a transaction.
	KindSkip Kind = iota
	// KindData is a message of the transaction (Relation, Type, Insert,
	// Update, Delete, Truncate, a transactional logical message), to be
	// decoded with Decode once the transaction commits.
	KindData
	// KindBegin starts a transaction (protocol version 1 framing); Xid is
	// the transaction's id.
	KindBegin
	// KindCommit ends the transaction begun last; End and CommitTime are set.
	KindCommit
	// KindStreamStart opens a block of a large transaction streamed before
	// it commits (protocol version 2); Xid is set.
	KindStreamStart
	// KindStreamStop closes the block opened last.
	KindStreamStop
	// KindStreamCommit commits streamed transaction Xid; End and
	// CommitTime are set.
	KindStreamCommit
	// KindStreamAbort rolls back streamed transaction Xid, or only its
	// subtransaction SubXid when that differs from Xid.
	KindStreamAbort
	// KindMessage is a non-transactional logical message (written with
	// pg_logical_emit_message(false, ...)), which arrives between
	// transactions at its own WAL position: End is that position, Prefix
	// its prefix and Body its content.
	KindMessage
)

// Frame is one pgoutput message as the receiving side sees it.
type Frame struct {
	Kind Kind
	// Xid is the transaction of a Begin, the streamed transaction (Stream
	// Start, Commit, Abort) or, for KindData inside a stream block, the
	// (sub)transaction that made the change.
	Xid    uint32
	SubXid uint32        // KindStreamAbort: the subtransaction rolled back
	End    pglogrepl.LSN // KindCommit, KindStreamCommit: the transaction's end LSN
	// CommitTime is the commit timestamp (KindCommit, KindStreamCommit).
	CommitTime time.Time
	// Body is the message for Decode (KindData): inside a stream block, the
	// message with its transaction id taken out, as protocol version 1
	// sends it. It aliases the input.
	Body []byte
	// Type and Rest are Body split after its type byte, so that a caller
	// can stage a streamed message without copying it (Body is then Type
	// followed by Rest, not contiguous in the input).
	Type, Rest []byte
	// Prefix is a KindMessage's prefix.
	Prefix string
}

// ReadFrame reads the framing of one pgoutput message. inStream says
// whether the message arrives inside a stream block (between Stream Start
// and Stream Stop), where data messages carry their transaction id; inTxn
// whether it arrives between Begin and Commit. It does not decode rows.
func ReadFrame(data []byte, inStream, inTxn bool) (Frame, error) {
	if len(data) == 0 {
		return Frame{Kind: KindSkip}, nil
	}
	switch data[0] {
	case 'B':
		// Final LSN (8), commit time (8), xid (4).
		if len(data) < 21 {
			return Frame{}, fmt.Errorf("begin message too short: %d bytes", len(data))
		}
		return Frame{Kind: KindBegin, Xid: binary.BigEndian.Uint32(data[17:21])}, nil
	case 'C':
		var c pglogrepl.CommitMessage
		if err := c.Decode(data[1:]); err != nil {
			return Frame{}, fmt.Errorf("decode commit: %w", err)
		}
		return Frame{Kind: KindCommit, End: c.TransactionEndLSN, CommitTime: c.CommitTime}, nil
	case 'S', 'E', 'c', 'A':
		return streamControl(data)
	case 'R', 'Y', 'I', 'U', 'D', 'T', 'M':
	default:
		return Frame{Kind: KindSkip}, nil // origin and the like carry no rows
	}
	if inStream {
		if len(data) < 5 {
			return Frame{}, fmt.Errorf("streamed message %q too short for its transaction id", data[0])
		}
		return Frame{Kind: KindData, Xid: binary.BigEndian.Uint32(data[1:5]), Type: data[0:1], Rest: data[5:]}, nil
	}
	if !inTxn {
		// Only non-transactional logical messages arrive outside a
		// transaction.
		if data[0] != 'M' {
			return Frame{Kind: KindSkip}, nil
		}
		return readMessage(data)
	}
	return Frame{Kind: KindData, Body: data, Type: data[0:1], Rest: data[1:]}, nil
}

// readMessage reads a non-transactional logical message: flags (1 byte),
// LSN (8), prefix (NUL-terminated), content length (4) and content.
func readMessage(data []byte) (Frame, error) {
	b := data[1:]
	if len(b) < 9 {
		return Frame{}, fmt.Errorf("logical message too short: %d bytes", len(data))
	}
	lsn := pglogrepl.LSN(binary.BigEndian.Uint64(b[1:9]))
	b = b[9:]
	nul := bytes.IndexByte(b, 0)
	if nul < 0 || len(b) < nul+5 {
		return Frame{}, errors.New("logical message: prefix or length cut short")
	}
	prefix := string(b[:nul])
	n := binary.BigEndian.Uint32(b[nul+1 : nul+5])
	content := b[nul+5:]
	if uint64(len(content)) != uint64(n) {
		return Frame{}, fmt.Errorf("logical message %q: %d content bytes, length says %d", prefix, len(content), n)
	}
	return Frame{Kind: KindMessage, End: lsn, Prefix: prefix, Body: content}, nil
}

// streamControl reads Stream Start, Stop, Commit and Abort.
func streamControl(data []byte) (Frame, error) {
	msg, err := pglogrepl.ParseV2(data, false)
	if err != nil {
		return Frame{}, fmt.Errorf("decode stream message %q: %w", data[0], err)
	}
	switch m := msg.(type) {
	case *pglogrepl.StreamStartMessageV2:
		return Frame{Kind: KindStreamStart, Xid: m.Xid}, nil
	case *pglogrepl.StreamStopMessageV2:
		return Frame{Kind: KindStreamStop}, nil
	case *pglogrepl.StreamAbortMessageV2:
		return Frame{Kind: KindStreamAbort, Xid: m.Xid, SubXid: m.SubXid}, nil
	case *pglogrepl.StreamCommitMessageV2:
		return Frame{Kind: KindStreamCommit, Xid: m.Xid, End: m.TransactionEndLSN, CommitTime: m.CommitTime}, nil
	}
	return Frame{}, fmt.Errorf("unexpected stream message %q", data[0])
}
