package source

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// maxDepth bounds the domains and arrays Resolve looks through.
const maxDepth = 16

// ColumnType is a column's type as the catalog describes it once domains
// and arrays are looked through: what the encoder chooses its output type
// from.
type ColumnType struct {
	// OID is the type after domains; for an array, its element's type
	// after domains. An array that is not written as a LIST (see Array) is
	// text (25): it is written as its text.
	OID uint32
	// Mod is the typmod that applies to OID: a domain's own when it has
	// one, else the column's (an array column's typmod is its element's).
	Mod int32
	// Array says the column is an array of OID written element by element.
	// It is false for the arrays written as their text: those of arrays
	// (through a domain), those whose element type's delimiter is not ','
	// (box), and every array when Resolver.ArraysAsText is set.
	Array bool
}

// Resolver describes a column's type (OID and typmod, as pgoutput and
// pg_attribute give them) as a ColumnType, looking through domains and
// arrays in the catalog. It caches by OID and is safe for concurrent use.
type Resolver struct {
	// ArraysAsText describes every array column as text, so that it is
	// written as PostgreSQL's array text instead of a LIST.
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

// Resolve describes the type of a column of type oid with typmod.
func (r *Resolver) Resolve(ctx context.Context, oid uint32, typmod int32) (ColumnType, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resolve(ctx, oid, typmod, 0)
}

func (r *Resolver) resolve(ctx context.Context, oid uint32, typmod int32, depth int) (ColumnType, error) {
	asText := ColumnType{OID: pgtype.TextOID, Mod: -1} // written as its text
	if depth > maxDepth {
		return asText, nil
	}
	info, err := r.info(ctx, oid)
	if err != nil {
		return ColumnType{}, err
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
			return asText, nil
		}
		// An array column's typmod is its element's.
		et, err := r.resolve(ctx, info.elem, typmod, depth+1)
		if err != nil {
			return ColumnType{}, err
		}
		if et.Array {
			return asText, nil
		}
		et.Array = true
		return et, nil
	}
	return ColumnType{OID: oid, Mod: typmod}, nil
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
