package validate

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// rowSource is the source side of a table: its rows as canonical values
// of the compared columns.
type rowSource interface {
	// estimate returns about how many rows each will give (0: unknown).
	estimate(ctx context.Context) (int64, error)
	// each calls fn with each row's encoded values, valid only during the
	// call.
	each(ctx context.Context, fn func(values []byte) error) error
}

// pgRows reads a table from PostgreSQL inside a transaction.
type pgRows struct {
	tx   pgx.Tx
	spec *spec
}

// query is the SELECT of the table's published rows and compared columns,
// as the full load reads them: the publication's row filter applied by
// PostgreSQL, a partitioned root with its partitions, any other table
// without its inheritance children.
func (p pgRows) query() string {
	only := "ONLY "
	if p.spec.src.Partitioned {
		only = ""
	}
	return "SELECT " + p.spec.src.SelectList() + " FROM " + only + p.spec.src.QualifiedName() + p.spec.src.Where()
}

// estimate returns the catalog's estimate of the table's rows (its
// partitions' for a partitioned root).
func (p pgRows) estimate(ctx context.Context) (int64, error) {
	var n int64
	err := p.tx.QueryRow(ctx, `
		SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint
		FROM pg_partition_tree($1::oid::regclass) t JOIN pg_class c ON c.oid = t.relid`, p.spec.src.OID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("estimate the source's rows: %w", err)
	}
	return n, nil
}

// each streams the rows in the transaction's snapshot.
func (p pgRows) each(ctx context.Context, fn func(values []byte) error) error {
	// The simple protocol returns every value as its type's text output,
	// under the session settings cdc2s3 reads with.
	rows, err := p.tx.Query(ctx, p.query(), pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return fmt.Errorf("read the source: %w", err)
	}
	defer rows.Close()
	var values []byte
	for rows.Next() {
		raw := rows.RawValues()
		values = values[:0]
		for j, c := range p.spec.cols {
			if values, err = appendPG(values, c.kind, raw[j]); err != nil {
				return fmt.Errorf("source column %s: %w", c.name, err)
			}
		}
		if err := fn(values); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the source: %w", err)
	}
	return nil
}

// eachSourceRow streams the source's rows with their keys; the row passed
// to fn is valid only during the call.
func (t *tableRun) eachSourceRow(ctx context.Context, fn func(stateRow) error) error {
	return t.source.each(ctx, func(values []byte) error {
		key, err := t.keyOf(values)
		if err != nil {
			return err
		}
		return fn(stateRow{keyHash: keyHash(key), key: key, values: values})
	})
}

// sourceSums reads the source once and sums its rows per hash range.
func (t *tableRun) sourceSums(ctx context.Context) error {
	estimate, err := t.source.estimate(ctx)
	if err != nil {
		return err
	}
	t.st.SourceEstimate.Store(estimate)
	n := int64(0)
	err = t.eachSourceRow(ctx, func(r stateRow) error {
		t.src.add(r)
		if n++; n%1024 == 0 {
			t.st.SourceRows.Store(n)
		}
		return nil
	})
	t.st.SourceRows.Store(n)
	return err
}

// sourceDetail reads the source again and spills its rows in the ranges
// whose sums differ.
func (t *tableRun) sourceDetail(ctx context.Context) ([]part, error) {
	s, err := newSpill(t.dir, "source", 0, 0, t.bits)
	if err != nil {
		return nil, err
	}
	var buf []byte
	err = t.eachSourceRow(ctx, func(r stateRow) error {
		if !t.differ.has(rangeOf(r.keyHash)) {
			return nil
		}
		buf = r.encode(buf[:0])
		return s.add(buf)
	})
	if err != nil {
		s.abort()
		return nil, err
	}
	return s.close()
}
