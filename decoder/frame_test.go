package decoder_test

import (
	"bytes"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/cdc2s3/cdc2s3/decoder"
)

// TestReadFrame checks the framing of protocol version 1 and 2 messages:
// boundaries with their positions, data messages kept (a streamed one with
// its transaction id taken out), and messages that carry nothing skipped.
func TestReadFrame(t *testing.T) {
	ins := insertMsg(relUsers, txt("1"), null, null)
	// A streamed insert: type byte, then the (sub)transaction id, then the
	// version 1 body.
	streamedIns := append(wire{'I'}.int32(77).done(), ins[1:]...)
	cases := []struct {
		name            string
		msg             []byte
		inStream, inTxn bool
		kind            decoder.Kind
		xid, subXid     uint32
		end             pglogrepl.LSN
		body            []byte
	}{
		{name: "begin", msg: beginMsg(0x100, 5, 9), kind: decoder.KindBegin, xid: 9},
		{name: "commit", msg: commitMsg(0x100, 0x128, 5), inTxn: true, kind: decoder.KindCommit, end: 0x128},
		{name: "row in a transaction", msg: ins, inTxn: true, kind: decoder.KindData, body: ins},
		{name: "relation in a transaction", msg: usersRel(), inTxn: true, kind: decoder.KindData, body: usersRel()},
		{name: "origin", msg: originMsg(1, "o"), inTxn: true, kind: decoder.KindSkip},
		{name: "message outside a transaction", msg: logicalMsg(false, 0x1F0, "p", []byte("x")), kind: decoder.KindMessage, end: 0x1F0, body: []byte("x")},
		{name: "empty", msg: nil, kind: decoder.KindSkip},
		{name: "stream start", msg: wire{'S'}.int32(77).byte1(1).done(), kind: decoder.KindStreamStart, xid: 77},
		{name: "stream stop", msg: []byte{'E'}, inStream: true, kind: decoder.KindStreamStop},
		{name: "streamed row", msg: streamedIns, inStream: true, kind: decoder.KindData, xid: 77, body: ins},
		{name: "stream commit", msg: wire{'c'}.int32(77).byte1(0).lsn(0x200).lsn(0x228).pgTime(5).done(),
			kind: decoder.KindStreamCommit, xid: 77, end: 0x228},
		{name: "stream abort", msg: wire{'A'}.int32(77).int32(78).done(), kind: decoder.KindStreamAbort, xid: 77, subXid: 78},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := decoder.ReadFrame(tc.msg, tc.inStream, tc.inTxn)
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind != tc.kind || f.Xid != tc.xid || f.SubXid != tc.subXid || f.End != tc.end {
				t.Errorf("frame %+v, want kind %d xid %d subxid %d end %s", f, tc.kind, tc.xid, tc.subXid, tc.end)
			}
			if tc.kind == decoder.KindMessage && (f.Prefix != "p" || !bytes.Equal(f.Body, tc.body)) {
				t.Errorf("message prefix %q body %q, want %q %q", f.Prefix, f.Body, "p", tc.body)
			}
			if tc.kind != decoder.KindData {
				return
			}
			if got := append(bytes.Clone(f.Type), f.Rest...); !bytes.Equal(got, tc.body) {
				t.Errorf("Type+Rest = %x, want %x", got, tc.body)
			}
			if !tc.inStream && !bytes.Equal(f.Body, tc.body) {
				t.Errorf("Body = %x, want %x", f.Body, tc.body)
			}
		})
	}
	msg := logicalMsg(false, 0x1F0, "p", []byte("xy"))
	begin := beginMsg(0x100, 5, 9)
	for _, bad := range [][]byte{{'C', 0}, {'S', 0}, {'I', 0, 0}, msg[:8], msg[:13], msg[:len(msg)-1], begin[:20]} {
		if _, err := decoder.ReadFrame(bad, bad[0] == 'I', bad[0] != 'M' && bad[0] != 'B'); err == nil {
			t.Errorf("ReadFrame(%x): no error for a cut message", bad)
		}
	}
}
