package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/migrate"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
)

type migrateFlags struct {
	dryRun   bool
	history  bool
	tenantID string
	parallel int
}

func (c *cli) migrateCommand() *cobra.Command {
	var f migrateFlags
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Migrate the control database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withEngines(cmd.Context(), func(e *app.Engines) error {
				mig, err := migrate.New(e.Control, e.ControlMigrations)
				if err != nil {
					return err
				}
				return runMigrator(cmd.Context(), c.stdout, "control database", mig, f)
			})
		},
	}
	addModeFlags(cmd, &f)

	var tf migrateFlags
	tenants := &cobra.Command{
		Use:   "tenants",
		Short: "Migrate every tenant database (or one, with --tenant)",
		Long: "Migrates each tenant database in turn. A tenant that fails does not stop the others; " +
			"the exit status is non-zero if any failed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withEngines(cmd.Context(), func(e *app.Engines) error {
				return migrateTenants(cmd.Context(), c.stdout, e, tf)
			})
		},
	}
	addModeFlags(tenants, &tf)
	tenants.Flags().StringVar(&tf.tenantID, "tenant", "", "migrate only the tenant with this id")
	tenants.Flags().IntVar(&tf.parallel, "parallel", 4, "how many tenant databases to migrate at once")
	cmd.AddCommand(tenants)
	return cmd
}

func addModeFlags(cmd *cobra.Command, f *migrateFlags) {
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "list the migrations that would run, without running them")
	cmd.Flags().BoolVar(&f.history, "history", false, "list the applied migrations with the time each was applied")
	cmd.MarkFlagsMutuallyExclusive("dry-run", "history")
}

func (c *cli) withEngines(ctx context.Context, fn func(*app.Engines) error) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	e, err := app.OpenEngines(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	return fn(e)
}

// runMigrator applies, lists or reports the migrations of one database,
// writing one line per migration prefixed with label.
func runMigrator(ctx context.Context, w io.Writer, label string, mig *migrate.Migrator, f migrateFlags) error {
	var lines []string
	switch {
	case f.history:
		applied, err := mig.History(ctx)
		if err != nil {
			return err
		}
		for _, m := range applied {
			lines = append(lines, fmt.Sprintf("%s: %s applied at %s", label, m.Name, m.AppliedAt.Format("2006-01-02T15:04:05Z")))
		}
		if len(applied) == 0 {
			lines = append(lines, label+": no migrations applied")
		}
	case f.dryRun:
		pending, err := mig.Pending(ctx)
		if err != nil {
			return err
		}
		for _, m := range pending {
			lines = append(lines, fmt.Sprintf("%s: would apply %s", label, m.Name))
		}
		if len(pending) == 0 {
			lines = append(lines, label+": up to date")
		}
	default:
		applied, err := mig.Up(ctx)
		for _, m := range applied {
			lines = append(lines, fmt.Sprintf("%s: applied %s", label, m.Name))
		}
		if err != nil {
			printLines(w, lines)
			return err
		}
		if len(applied) == 0 {
			lines = append(lines, label+": up to date")
		}
	}
	printLines(w, lines)
	return nil
}

// printMu keeps the lines of one tenant together when tenants migrate in
// parallel.
var printMu sync.Mutex //nolint:gochecknoglobals // guards the shared stdout

func printLines(w io.Writer, lines []string) {
	printMu.Lock()
	defer printMu.Unlock()
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func migrateTenants(ctx context.Context, w io.Writer, e *app.Engines, f migrateFlags) error {
	control, err := migrate.New(e.Control, e.ControlMigrations)
	if err != nil {
		return err
	}
	if current, latest, err := control.Versions(ctx); err != nil {
		return err
	} else if current < latest {
		return errors.New("the control database is not migrated: run `tenantry migrate` first")
	}

	var tenants []*tenantry.Tenant
	if f.tenantID != "" {
		t, err := tenant.FindProvisioned(ctx, e.Control, f.tenantID)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", f.tenantID, err)
		}
		tenants = []*tenantry.Tenant{t}
	} else if tenants, err = tenant.ListProvisioned(ctx, e.Control); err != nil {
		return err
	}

	var (
		mu     sync.Mutex
		failed int
		wg     sync.WaitGroup
		sem    = make(chan struct{}, max(f.parallel, 1))
	)
	for _, t := range tenants {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			label := fmt.Sprintf("tenant %s (%s)", t.ID, t.DatabaseName)
			if err := migrateTenant(ctx, w, e.Tenants, t.DatabaseName, label, f); err != nil {
				printLines(w, []string{fmt.Sprintf("%s: FAILED: %v", label, err)})
				mu.Lock()
				failed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(w, "%d tenant databases, %d failed\n", len(tenants), failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d tenant databases failed to migrate", failed, len(tenants))
	}
	return nil
}

func migrateTenant(ctx context.Context, w io.Writer, engine tenantdb.Engine, name, label string, f migrateFlags) error {
	db, err := engine.Open(ctx, name, 1)
	if err != nil {
		return err
	}
	defer func(db sqldb.DB) { _ = db.Close() }(db)
	mig, err := migrate.New(db, engine.Migrations())
	if err != nil {
		return err
	}
	return runMigrator(ctx, w, label, mig, f)
}
