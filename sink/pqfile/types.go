// Package pqfile encodes table rows into Parquet files that follow the
// cdc2s3 output contract: the metadata columns first, then the table's own
// columns, with the types Athena engine v3 and Spark 3.3 read as they are.
//
// Values arrive as PostgreSQL's text output (pgoutput and COPY both produce
// it under the same session settings), or, for the full load, in the types'
// binary format (COPY's binary format, Options.Formats), which is cheaper to
// produce and to read. Both conversions give the same Parquet value for the
// same PostgreSQL value, so a LOAD row and a CDC row of the same value come
// out identical.
package pqfile

import (
	"fmt"
	"strings"
)

// Kind is the Parquet representation chosen for a PostgreSQL type.
type Kind uint8

// The kinds of the contract's type table.
const (
	String      Kind = iota // BYTE_ARRAY (STRING): PostgreSQL's text output
	Bool                    // BOOLEAN
	Int16                   // INT32 (INT(16, signed))
	Int32                   // INT32 (INT(32, signed))
	Int64                   // INT64
	Float32                 // FLOAT
	Float64                 // DOUBLE
	Decimal                 // DECIMAL(p,s) on INT32, INT64 or FIXED_LEN_BYTE_ARRAY
	Bytes                   // BYTE_ARRAY
	Date                    // INT32 (DATE)
	Timestamp               // INT64 TIMESTAMP(MICROS, not adjusted to UTC)
	TimestampTZ             // INT64 TIMESTAMP(MICROS, adjusted to UTC)
)

var kindNames = [...]string{"string", "bool", "int16", "int32", "int64", "float32", "float64", "decimal", "bytes", "date", "timestamp", "timestamptz"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Type is the resolved output type of one column.
type Type struct {
	Kind      Kind
	Precision int  // Decimal only: 1..38
	Scale     int  // Decimal only: 0..Precision
	List      bool // a PostgreSQL array: LIST of Kind
}

// String describes the type, e.g. "decimal(12,2)" or "list<timestamptz>".
func (t Type) String() string {
	s := t.Kind.String()
	if t.Kind == Decimal {
		s = fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
	}
	if t.List {
		s = "list<" + s + ">"
	}
	return s
}

// ParseType is the inverse of Type.String.
func ParseType(s string) (Type, error) {
	var t Type
	if inner, ok := strings.CutPrefix(s, "list<"); ok && strings.HasSuffix(inner, ">") {
		t.List, s = true, strings.TrimSuffix(inner, ">")
	}
	if _, err := fmt.Sscanf(s, "decimal(%d,%d)", &t.Precision, &t.Scale); err == nil {
		t.Kind = Decimal
		return t, nil
	}
	for k, name := range kindNames {
		if name == s && Kind(k) != Decimal {
			t.Kind = Kind(k)
			return t, nil
		}
	}
	return Type{}, fmt.Errorf("unknown column type %q", s)
}

// Column is one table column as written to Parquet.
type Column struct {
	Name string
	Type Type
}

// MaxDecimalPrecision is the largest precision written as DECIMAL; a numeric
// with a larger precision (or none) is written as its exact text.
const MaxDecimalPrecision = 38

// DecimalType returns the type for numeric(precision, scale): DECIMAL where
// Parquet can hold it exactly, else STRING (unconstrained numeric, precision
// above 38, and the negative or larger-than-precision scales PostgreSQL 15
// allows).
func DecimalType(precision, scale int) Type {
	if precision < 1 || precision > MaxDecimalPrecision || scale < 0 || scale > precision {
		return Type{Kind: String}
	}
	return Type{Kind: Decimal, Precision: precision, Scale: scale}
}

// decimalBytes is the smallest FIXED_LEN_BYTE_ARRAY length that holds every
// unscaled value of the given precision in two's complement, the length
// Spark and Hive expect.
func decimalBytes(precision int) int {
	for n := 1; ; n++ {
		// 2^(8n-1) > 10^precision  <=>  (8n-1)*log10(2) > precision
		if float64(8*n-1)*0.30102999566398120 > float64(precision) {
			return n
		}
	}
}
