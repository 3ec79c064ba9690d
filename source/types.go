package source

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/sink/pqfile"
)

// Built-in type OIDs with a Parquet type of their own (contract §3); every
// other type is written as its text.
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

// Resolver maps a column's type (OID and typmod, as pgoutput and
// pg_attribute give them) to its Parquet type, looking through domains and
// arrays in the catalog. It caches by OID and is safe for concurrent use.
type Resolver struct {
	// ArraysAsText writes every array column as PostgreSQL's array text
	// instead of a LIST.
	ArraysAsText bool

	mu    sync.Mutex
	conn  *pgx.Conn
	cache map[uint32]typeInfo
}

type typeInfo struct {
	typtype  byte   // b base, d domain, e enum, c composite, r range, m multirange, p pseudo
	baseType uint32 // domains
	baseMod  int32  // domains
	elem     uint32 // arrays
	delim    byte   // arrays: the element type's delimiter
	category byte
}

// NewResolver returns a Resolver that reads the catalog through conn. The
// Resolver uses conn only under its own lock; the caller must not use conn
// concurrently with it.
func NewResolver(conn *pgx.Conn) *Resolver {
	return &Resolver{conn: conn, cache: map[uint32]typeInfo{}}
}

// Resolve returns the Parquet type of a column of type oid with typmod.
func (r *Resolver) Resolve(ctx context.Context, oid uint32, typmod int32) (pqfile.Type, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resolve(ctx, oid, typmod, 0)
}

func (r *Resolver) resolve(ctx context.Context, oid uint32, typmod int32, depth int) (pqfile.Type, error) {
	if depth > 16 {
		return pqfile.Type{Kind: pqfile.String}, nil
	}
	if k, ok := builtinKind(oid); ok {
		if oid == oidNumeric {
			return numericType(typmod), nil
		}
		return pqfile.Type{Kind: k}, nil
	}
	info, err := r.info(ctx, oid)
	if err != nil {
		return pqfile.Type{}, err
	}
	switch {
	case info.typtype == 'd':
		mod := info.baseMod
		if mod == -1 {
			mod = typmod
		}
		return r.resolve(ctx, info.baseType, mod, depth+1)
	case info.category == 'A' && info.elem != 0:
		if r.ArraysAsText || info.delim != ',' {
			return pqfile.Type{Kind: pqfile.String}, nil
		}
		// An array column's typmod is its element's.
		et, err := r.resolve(ctx, info.elem, typmod, depth+1)
		if err != nil {
			return pqfile.Type{}, err
		}
		if et.List {
			return pqfile.Type{Kind: pqfile.String}, nil
		}
		et.List = true
		return et, nil
	}
	return pqfile.Type{Kind: pqfile.String}, nil
}

func (r *Resolver) info(ctx context.Context, oid uint32) (typeInfo, error) {
	if ti, ok := r.cache[oid]; ok {
		return ti, nil
	}
	var ti typeInfo
	var delim *string
	err := r.conn.QueryRow(ctx, `
		SELECT t.typtype::"char", t.typbasetype, t.typtypmod, t.typelem, t.typcategory::"char",
		       (SELECT e.typdelim::text FROM pg_type e WHERE e.oid = t.typelem)
		FROM pg_type t WHERE t.oid = $1`, oid).
		Scan(&ti.typtype, &ti.baseType, &ti.baseMod, &ti.elem, &ti.category, &delim)
	if err != nil {
		return ti, fmt.Errorf("look up type %d: %w", oid, err)
	}
	if delim != nil && len(*delim) == 1 {
		ti.delim = (*delim)[0]
	}
	r.cache[oid] = ti
	return ti, nil
}

func builtinKind(oid uint32) (pqfile.Kind, bool) {
	switch oid {
	case oidBool:
		return pqfile.Bool, true
	case oidBytea:
		return pqfile.Bytes, true
	case oidInt2:
		return pqfile.Int16, true
	case oidInt4:
		return pqfile.Int32, true
	case oidInt8:
		return pqfile.Int64, true
	case oidFloat4:
		return pqfile.Float32, true
	case oidFloat8:
		return pqfile.Float64, true
	case oidDate:
		return pqfile.Date, true
	case oidTimestamp:
		return pqfile.Timestamp, true
	case oidTimestampTZ:
		return pqfile.TimestampTZ, true
	case oidNumeric:
		return pqfile.Decimal, true
	}
	return 0, false
}

// numericType decodes numeric's typmod: ((precision << 16) | scale) + 4,
// where PostgreSQL 15 stores the scale as an 11-bit signed number.
func numericType(typmod int32) pqfile.Type {
	if typmod < 4 {
		return pqfile.Type{Kind: pqfile.String}
	}
	m := typmod - 4
	precision := int((m >> 16) & 0xffff)
	scale := int(m & 0x7ff)
	if scale > 1023 {
		scale -= 2048
	}
	return pqfile.DecimalType(precision, scale)
}
