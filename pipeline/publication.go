package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cdc2s3/cdc2s3/internal/logkey"
	"github.com/cdc2s3/cdc2s3/source"
)

// ensurePublication makes sure the publication exists and publishes what
// --tables names: every name must be a table; a missing publication is
// created for them (or for all tables); an existing one that publishes
// other tables is an error showing the difference and the statement that
// reconciles it, run only when cfg.ReconcilePublication asks for it. A
// publication of listed tables that publishes none is an error too. Never
// is --tables silently ignored.
func ensurePublication(ctx context.Context, conn *pgx.Conn, cfg Config, log *slog.Logger) error {
	tables, missing, err := source.CanonicalNames(ctx, conn, cfg.Tables)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("--tables names %s, which do(es) not exist in this database: fix --tables (schema.table, or table for public)", strings.Join(missing, ", "))
	}
	pub, err := source.LookupPublication(ctx, conn, cfg.Publication)
	if err != nil {
		return err
	}
	if pub == nil {
		if err := source.CreatePublication(ctx, conn, cfg.Publication, tables); err != nil {
			return err
		}
		log.Info("created publication", logkey.Publication, cfg.Publication, logkey.For, source.PublicationTarget(tables))
		return nil
	}
	published, err := source.PublishedNames(ctx, conn, cfg.Publication)
	if err != nil {
		return err
	}
	if len(published) == 0 && !pub.AllTables {
		schemas, err := source.PublishesSchemas(ctx, conn, cfg.Publication)
		if err != nil {
			return err
		}
		if !schemas && len(tables) == 0 {
			return fmt.Errorf("publication %q publishes no table: add tables (ALTER PUBLICATION %s ADD TABLE ...), pass --tables with --reconcile-publication, or choose another --publication",
				cfg.Publication, pgx.Identifier{cfg.Publication}.Sanitize())
		}
	}
	if len(tables) == 0 {
		return nil
	}
	return reconcile(ctx, conn, cfg, pub, published, tables, log)
}

// reconcile compares the tables the publication publishes with --tables.
func reconcile(ctx context.Context, conn *pgx.Conn, cfg Config, pub *source.Publication, published, tables []string, log *slog.Logger) error {
	want := slices.Clone(tables)
	slices.Sort(want)
	want = slices.Compact(want)
	notPublished, notListed := source.TableDiff(published, want)
	if len(notPublished) == 0 && len(notListed) == 0 {
		return nil
	}
	diff := fmt.Sprintf("publication %q publishes %s; --tables names %s", cfg.Publication, list(published), list(want))
	if len(notPublished) > 0 {
		diff += "; not published: " + strings.Join(notPublished, ", ")
	}
	if len(notListed) > 0 {
		diff += "; published but not in --tables: " + strings.Join(notListed, ", ")
	}
	if pub.AllTables {
		return fmt.Errorf("%s. It is FOR ALL TABLES, so it cannot publish only some: drop --tables to stream every table, or choose another --publication for these tables", diff)
	}
	alter := fmt.Sprintf("ALTER PUBLICATION %s SET %s", pgx.Identifier{cfg.Publication}.Sanitize(), source.PublicationTarget(want))
	if !cfg.ReconcilePublication {
		return fmt.Errorf("%s. To make the publication match --tables, run %s (or pass --reconcile-publication to let cdc2s3 run it); to stream what it publishes, drop --tables. "+
			"Tables added this way get only their changes from now on: their existing rows are not loaded", diff, alter)
	}
	if err := source.SetPublicationTables(ctx, conn, cfg.Publication, want); err != nil {
		return err
	}
	log.Warn("changed the publication to match --tables; tables added get only their changes from now on",
		logkey.Publication, cfg.Publication, logkey.Tables, want)
	return nil
}

// list prints names for a message: "no table" when there are none.
func list(names []string) string {
	if len(names) == 0 {
		return "no table"
	}
	return strings.Join(names, ", ")
}
