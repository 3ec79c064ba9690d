package pqfile

import "github.com/jackc/pgx/v5/pgtype"

// TypeFor returns the output type of values of the PostgreSQL type oid with
// typmod, or of a LIST of them when list is set. oid is a type the catalog
// has already looked through: a domain's base type, an array's element
// type. A type without a Parquet type of its own, built-in or not, is
// written as its text (String).
func TypeFor(oid uint32, typmod int32, list bool) Type {
	t := Type{Kind: builtinKind(oid)}
	if t.Kind == Decimal {
		t = numericType(typmod)
	}
	t.List = list
	return t
}

// builtinKind returns the kind of a built-in type, String for any other.
func builtinKind(oid uint32) Kind {
	switch oid {
	case pgtype.BoolOID:
		return Bool
	case pgtype.ByteaOID:
		return Bytes
	case pgtype.Int2OID:
		return Int16
	case pgtype.Int4OID:
		return Int32
	case pgtype.Int8OID:
		return Int64
	case pgtype.Float4OID:
		return Float32
	case pgtype.Float8OID:
		return Float64
	case pgtype.DateOID:
		return Date
	case pgtype.TimestampOID:
		return Timestamp
	case pgtype.TimestamptzOID:
		return TimestampTZ
	case pgtype.NumericOID:
		return Decimal
	}
	return String
}

// numericType decodes numeric's typmod: ((precision << 16) | scale) + 4,
// where PostgreSQL 15 stores the scale as an 11-bit signed number. A typmod
// below 4 (-1: no typmod) is an unconstrained numeric.
func numericType(typmod int32) Type {
	if typmod < 4 {
		return Type{Kind: String}
	}
	m := typmod - 4
	precision := int((m >> 16) & 0xffff)
	scale := int(m & 0x7ff)
	if scale > 1023 {
		scale -= 2048
	}
	return DecimalType(precision, scale)
}

// KindOID returns the built-in type whose binary format a column of kind k
// takes in FormatBinary (numeric for Decimal), 0 for String, whose binary
// format is text (see TextBinary).
func KindOID(k Kind) uint32 {
	switch k {
	case Bool:
		return pgtype.BoolOID
	case Bytes:
		return pgtype.ByteaOID
	case Int16:
		return pgtype.Int2OID
	case Int32:
		return pgtype.Int4OID
	case Int64:
		return pgtype.Int8OID
	case Float32:
		return pgtype.Float4OID
	case Float64:
		return pgtype.Float8OID
	case Date:
		return pgtype.DateOID
	case Timestamp:
		return pgtype.TimestampOID
	case TimestampTZ:
		return pgtype.TimestamptzOID
	case Decimal:
		return pgtype.NumericOID
	}
	return 0
}

// TextBinary reports whether the binary format of the built-in type oid is
// the same bytes as its text output (text, varchar, bpchar, name, json), so
// that a String column of it can take FormatBinary.
func TextBinary(oid uint32) bool {
	switch oid {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.JSONOID:
		return true
	}
	return false
}
