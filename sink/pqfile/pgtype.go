package pqfile

// Built-in PostgreSQL type OIDs with a Parquet type of their own (contract
// §3); every other type is written as its text.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidFloat4      = 700
	oidFloat8      = 701
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
	oidNumeric     = 1700
)

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
	case oidBool:
		return Bool
	case oidBytea:
		return Bytes
	case oidInt2:
		return Int16
	case oidInt4:
		return Int32
	case oidInt8:
		return Int64
	case oidFloat4:
		return Float32
	case oidFloat8:
		return Float64
	case oidDate:
		return Date
	case oidTimestamp:
		return Timestamp
	case oidTimestampTZ:
		return TimestampTZ
	case oidNumeric:
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

// Built-in types whose binary format is their text output.
const (
	oidName    = 19
	oidText    = 25
	oidJSON    = 114
	oidBPChar  = 1042
	oidVarchar = 1043
)

// NumericOID is numeric's type OID: a String column of it can take
// FormatBinaryNumeric.
const NumericOID = oidNumeric

// KindOID returns the built-in type whose binary format a column of kind k
// takes in FormatBinary (numeric for Decimal), 0 for String, whose binary
// format is text (see TextBinary).
func KindOID(k Kind) uint32 {
	switch k {
	case Bool:
		return oidBool
	case Bytes:
		return oidBytea
	case Int16:
		return oidInt2
	case Int32:
		return oidInt4
	case Int64:
		return oidInt8
	case Float32:
		return oidFloat4
	case Float64:
		return oidFloat8
	case Date:
		return oidDate
	case Timestamp:
		return oidTimestamp
	case TimestampTZ:
		return oidTimestampTZ
	case Decimal:
		return oidNumeric
	}
	return 0
}

// TextBinary reports whether the binary format of the built-in type oid is
// the same bytes as its text output (text, varchar, bpchar, name, json), so
// that a String column of it can take FormatBinary.
func TextBinary(oid uint32) bool {
	switch oid {
	case oidText, oidVarchar, oidBPChar, oidName, oidJSON:
		return true
	}
	return false
}
