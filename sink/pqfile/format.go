package pqfile

import "fmt"

// Format is how the values of a column reach Writer.Write.
type Format uint8

const (
	// FormatText is PostgreSQL's text output of the column's type under
	// the contract's session settings: what pgoutput sends and COPY's text
	// format prints. It is every column's format unless Options.Formats
	// says otherwise.
	FormatText Format = iota
	// FormatBinary is PostgreSQL's binary (send) format of the type the
	// column's Kind stands for: bool, int2, int4, int8, float4, float8,
	// numeric (Decimal), bytea, date, timestamp and timestamptz. A String
	// column's value is its text as it is (the binary format of text,
	// varchar, bpchar, name and json is their text, and so is that of a
	// value the query turned into text). A LIST column's value is
	// PostgreSQL's binary array of such elements.
	FormatBinary
	// FormatBinaryNumeric is numeric's binary format in a String column
	// (numeric without a typmod, or with a precision above 38), written as
	// the exact decimal text PostgreSQL prints for it. A LIST column's value
	// is a binary array of them.
	FormatBinaryNumeric
)

// String names the format.
func (f Format) String() string {
	switch f {
	case FormatText:
		return "text"
	case FormatBinary:
		return "binary"
	case FormatBinaryNumeric:
		return "binary numeric"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// checkFormats reports formats that do not fit cols: one per column (or
// none at all), FormatBinaryNumeric only for String columns.
func checkFormats(cols []Column, formats []Format) error {
	if len(formats) == 0 {
		return nil
	}
	if len(formats) != len(cols) {
		return fmt.Errorf("%d formats for %d columns", len(formats), len(cols))
	}
	for i, f := range formats {
		switch {
		case f > FormatBinaryNumeric:
			return fmt.Errorf("column %q: unknown format %d", cols[i].Name, f)
		case f == FormatBinaryNumeric && cols[i].Type.Kind != String:
			return fmt.Errorf("column %q: binary numeric text for a %s column", cols[i].Name, cols[i].Type)
		}
	}
	return nil
}
