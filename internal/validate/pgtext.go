package validate

import (
	"github.com/cdc2s3/cdc2s3/internal/pgtext"
)

// appendPGDate appends the canonical value of a date's text; ±infinity and
// days beyond 32 bits, which a DATE cannot hold, are NULL.
func appendPGDate(buf []byte, s string) ([]byte, error) {
	days, finite, err := pgtext.ParseDate(s)
	if err != nil {
		return nil, err
	}
	if !finite || days < -1<<31 || days > 1<<31-1 {
		return appendNull(buf), nil
	}
	return appendValue(buf, tagDate, []byte(pgtext.DateText(days))), nil
}

// appendPGTimestamp appends the canonical value of a timestamp's (tz: a
// timestamptz's) text; ±infinity and instants beyond int64 microseconds
// since 1970 are NULL.
func appendPGTimestamp(buf []byte, s string, tz bool) ([]byte, error) {
	us, ok, err := pgtext.ParseTimestamp(s, tz)
	if err != nil {
		return nil, err
	}
	if !ok {
		return appendNull(buf), nil
	}
	tag := tagTime
	if tz {
		tag = tagTimeTZ
	}
	return appendValue(buf, tag, []byte(pgtext.TimestampText(us))), nil
}
