package pqfile

import "testing"

func TestTypeFor(t *testing.T) {
	// OIDs and typmods as PostgreSQL 15's pg_type and pg_attribute give
	// them (numeric typmods read from columns declared as commented).
	for _, tc := range []struct {
		oid    uint32
		typmod int32
		want   string
	}{
		{16, -1, "bool"},
		{17, -1, "bytes"},
		{21, -1, "int16"},
		{23, -1, "int32"},
		{20, -1, "int64"},
		{700, -1, "float32"},
		{701, -1, "float64"},
		{1082, -1, "date"},
		{1114, -1, "timestamp"},
		{1114, 3, "timestamp"}, // timestamp(3): written in micros all the same
		{1184, -1, "timestamptz"},
		{1700, -1, "string"},              // numeric
		{1700, 0, "string"},               // below the smallest typmod
		{1700, 3, "string"},               //
		{1700, 65540, "decimal(1,0)"},     // numeric(1,0)
		{1700, 655366, "decimal(10,2)"},   // numeric(10,2)
		{1700, 2490372, "decimal(38,0)"},  // numeric(38,0)
		{1700, 2490410, "decimal(38,38)"}, // numeric(38,38)
		{1700, 2555910, "string"},         // numeric(39,2): above 38 digits
		{1700, 65536004, "string"},        // numeric(1000,0)
		{1700, 329730, "string"},          // numeric(5,-2): negative scale
		{1700, 66588, "string"},           // numeric(1,-1000)
		{1700, 196617, "string"},          // numeric(3,5): scale above precision
		{1700, 65537004, "string"},        // numeric(1000,1000)
		{25, -1, "string"},                // text
		{1043, 9, "string"},               // varchar(5)
		{2950, -1, "string"},              // uuid
		{3802, -1, "string"},              // jsonb
		{1083, -1, "string"},              // time
		{1186, -1, "string"},              // interval
		{603, -1, "string"},               // box
		{1007, -1, "string"},              // int4[]: arrays are looked through by the caller
		{16385, -1, "string"},             // a user-defined type
		{0, -1, "string"},
	} {
		if got := TypeFor(tc.oid, tc.typmod, false).String(); got != tc.want {
			t.Errorf("TypeFor(%d, %d, false) = %s, want %s", tc.oid, tc.typmod, got, tc.want)
		}
		if got, want := TypeFor(tc.oid, tc.typmod, true).String(), "list<"+tc.want+">"; got != want {
			t.Errorf("TypeFor(%d, %d, true) = %s, want %s", tc.oid, tc.typmod, got, want)
		}
	}
	if got, want := TypeFor(1700, 655366, true), (Type{Kind: Decimal, Precision: 10, Scale: 2, List: true}); got != want {
		t.Errorf("numeric(10,2)[] = %+v, want %+v", got, want)
	}
}
