package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/cdc2s3/cdc2s3/internal/preflight"
	"github.com/cdc2s3/cdc2s3/lsnstore"
	"github.com/cdc2s3/cdc2s3/pipeline"
	"github.com/cdc2s3/cdc2s3/sink/dest"
	"github.com/cdc2s3/cdc2s3/source"
)

// dropCommand returns the "drop" subcommand: it removes cdc2s3's
// replication slot and, when cdc2s3 is known to use it, its publication,
// after a confirmation. It never touches the destination's files.
func dropCommand() *cli.Command {
	return &cli.Command{
		Name:  "drop",
		Usage: "retire cdc2s3 on a source: drop its replication slot (and its publication); the destination's files stay",
		Flags: []cli.Flag{
			sourceFlag(),
			&cli.StringFlag{Name: "dest", Usage: "the destination the slot streams to: its state tells whether cdc2s3 uses the publication (read only)", EnvVars: env("DEST")},
			&cli.BoolFlag{Name: "s3-path-style", Usage: "use path-style S3 addressing (implied by a custom endpoint)", EnvVars: env("S3_PATH_STYLE")},
			&cli.StringFlag{Name: "slot", Value: pipeline.DefaultSlot, Usage: "replication slot to drop", EnvVars: env("SLOT")},
			&cli.StringFlag{Name: "publication", Value: pipeline.DefaultPublication, Usage: "publication to drop when the destination's state names it, or when given explicitly with --yes", EnvVars: env("PUBLICATION")},
			&cli.BoolFlag{Name: "yes", Usage: "do not ask for confirmation"},
		},
		Action: func(c *cli.Context) error {
			if c.String("source") == "" {
				return cli.Exit("no source: set --source or CDC2S3_SOURCE to a PostgreSQL connection string", 2)
			}
			var st lsnstore.State
			haveState := false
			if raw := c.String("dest"); raw != "" {
				var err error
				if st, haveState, err = readStateOnly(c.Context, raw, c.Bool("s3-path-style")); err != nil {
					return err
				}
			}
			// Unless named, the slot and publication are the destination's.
			slot, pub := c.String("slot"), c.String("publication")
			if haveState && !c.IsSet("slot") && st.Slot != "" {
				slot = st.Slot
			}
			if haveState && !c.IsSet("publication") && st.Publication != "" {
				pub = st.Publication
			}
			return runDrop(c, slot, pub, st, haveState)
		},
	}
}

// runDrop decides what to drop, asks, drops and says what it removed.
func runDrop(c *cli.Context, slotName, pub string, st lsnstore.State, haveState bool) error {
	ctx := c.Context
	conn, err := source.Connect(ctx, c.String("source"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	p, err := planDrop(c, conn, slotName, pub, st, haveState)
	if err != nil {
		return err
	}
	if !c.Bool("yes") {
		ok, err := confirm(c.App.Reader, c.App.Writer, fmt.Sprintf("Drop %s? [y/N] ", strings.Join(p.what(), " and ")))
		if err != nil {
			return err
		}
		if !ok {
			return cli.Exit("not confirmed: nothing dropped (answer y on a terminal, or pass --yes)", 1)
		}
	}
	return p.run(ctx, conn, c.App.Writer, st, haveState)
}

// dropPlan is what drop removes: the slot (when it exists) and the
// publication (when cdc2s3 is known to use it, or it is named with --yes).
type dropPlan struct {
	slotName, pub string
	slot          *source.Slot // nil: no such slot
	dropPub       bool
	keepNote      string // why an existing publication stays
}

// planDrop looks the slot and the publication up and decides what to drop.
// It fails when the slot is another database's or in use, or when there
// is nothing to drop.
func planDrop(c *cli.Context, conn *pgx.Conn, slotName, pub string, st lsnstore.State, haveState bool) (*dropPlan, error) {
	ctx := c.Context
	p := &dropPlan{slotName: slotName, pub: pub}
	var err error
	if p.slot, err = source.LookupSlot(ctx, conn, slotName); err != nil {
		return nil, source.Explain(err, nil)
	}
	if s := p.slot; s != nil {
		if !s.Here && s.Database != "" {
			return nil, cli.Exit(fmt.Sprintf("replication slot %s belongs to database %s: point --source at that database to drop it", slotName, s.Database), 1)
		}
		if s.Active {
			return nil, cli.Exit(fmt.Sprintf("replication slot %s is active (PID %d): stop the cdc2s3 daemon that uses it first, then run drop again", slotName, s.PID), 1)
		}
	}
	found, err := source.LookupPublication(ctx, conn, pub)
	if err != nil {
		return nil, err
	}
	// cdc2s3 records the publication it streams in the destination's
	// state; without that record only an explicit request drops one: on
	// the command line, not from the environment or a config file that run
	// shares, and with --yes.
	recorded := haveState && st.Slot == slotName && st.Publication == pub
	explicit := onCommandLine(os.Args, "publication") && c.Bool("yes")
	p.dropPub = found != nil && (recorded || explicit)
	if found != nil && !p.dropPub {
		p.keepNote = fmt.Sprintf("publication %s kept: no destination state says cdc2s3 uses it; to drop it too, pass --dest of the destination, or --publication %s --yes", pub, pub)
	}
	if p.slot == nil && !p.dropPub {
		msg := fmt.Sprintf("nothing dropped: no replication slot %s", slotName)
		if names, err := source.SlotNames(ctx, conn); err == nil && len(names) > 0 {
			msg += " (slots of this server: " + strings.Join(names, ", ") + ")"
		}
		if p.keepNote != "" {
			msg += "; " + p.keepNote
		}
		return nil, cli.Exit(msg, 1)
	}
	return p, nil
}

// what describes the plan for the confirmation question.
func (p *dropPlan) what() []string {
	var what []string
	if p.slot != nil {
		what = append(what, fmt.Sprintf("replication slot %s (confirmed_flush_lsn %s, retains %s of WAL)", p.slotName, p.slot.ConfirmedFlushLSN, preflight.FormatBytes(p.slot.RetainedBytes)))
	}
	if p.dropPub {
		what = append(what, "publication "+p.pub)
	}
	return what
}

// run drops what the plan names and says so on out.
func (p *dropPlan) run(ctx context.Context, conn *pgx.Conn, out io.Writer, st lsnstore.State, haveState bool) error {
	if p.slot != nil {
		if err := source.DropSlot(ctx, conn, p.slotName); err != nil {
			if errors.Is(err, source.ErrSlotActive) {
				return cli.Exit(fmt.Sprintf("replication slot %s became active: stop the cdc2s3 daemon that uses it first, then run drop again", p.slotName), 1)
			}
			return err
		}
		fmt.Fprintf(out, "dropped replication slot %s\n", p.slotName)
	} else {
		fmt.Fprintf(out, "no replication slot %s\n", p.slotName)
	}
	if p.dropPub {
		if err := source.DropPublication(ctx, conn, p.pub); err != nil {
			return err
		}
		fmt.Fprintf(out, "dropped publication %s\n", p.pub)
	} else if p.keepNote != "" {
		fmt.Fprintln(out, p.keepNote)
	}
	if haveState && st.Slot == p.slotName && p.slot != nil {
		fmt.Fprintf(out, "the destination's files were not touched; its state still names slot %s, so a run on it reports the slot as lost: start a new full load in a new --dest\n", p.slotName)
	}
	return nil
}

// onCommandLine reports whether args, up to a "--", give flag name
// (--name, -name, --name=value or -name=value).
func onCommandLine(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// confirm asks question on out and reads the answer from in when in is a
// terminal; anything but y or yes, and no terminal, means no.
func confirm(in io.Reader, out io.Writer, question string) (bool, error) {
	f, ok := in.(*os.File)
	if !ok {
		return false, nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false, nil
	}
	fmt.Fprint(out, question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// readStateOnly reads the destination's state without writing anything:
// a local directory's state file directly (opening the store would create
// directories), S3 through the store.
func readStateOnly(ctx context.Context, raw string, pathStyle bool) (lsnstore.State, bool, error) {
	var st lsnstore.State
	loc, err := dest.Parse(raw)
	if err != nil {
		return st, false, cli.Exit(err, 2)
	}
	if loc.Path != "" {
		b, err := os.ReadFile(filepath.Join(loc.Path, filepath.FromSlash(lsnstore.StateKey)))
		if errors.Is(err, os.ErrNotExist) {
			return st, false, nil
		}
		if err != nil {
			return st, false, fmt.Errorf("read the destination's state: %w", err)
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return st, false, fmt.Errorf("decode %s: %w", lsnstore.StateKey, err)
		}
		return st, true, nil
	}
	store, err := dest.Open(ctx, raw, dest.Options{PathStyle: pathStyle})
	if err != nil {
		return st, false, err
	}
	return lsnstore.New(store).Load(ctx)
}
