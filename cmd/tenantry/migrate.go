package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/config"
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
		Short: "Migrate the control database, the job queue's tables included",
		Long: "Applies the control database's pending migrations, then the job queue's, under the database's " +
			"schema lock: serve and worker apply the same ones as they start, and wait for a migration in " +
			"progress rather than collide with it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withEngines(cmd.Context(), func(e *app.Engines) error {
				mig, err := e.ControlMigrator()
				if err != nil {
					return err
				}
				return runMigrator(cmd.Context(), c.stdout, mig, f, func(set string) string { return set })
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
	cfg, err := c.loadAdminConfig(false)
	if err != nil {
		return err
	}
	return c.withEnginesOf(ctx, cfg, fn)
}

func (c *cli) withEnginesOf(ctx context.Context, cfg config.Config, fn func(*app.Engines) error) error {
	e, err := app.OpenEngines(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	return fn(e)
}

// loadAdminConfig loads the configuration of an administrative command and
// refuses it when the data directory it would use does not exist: only
// serve (and worker) create it, so that a command run from the wrong
// directory says so instead of working on a new, empty one. In the
// production shape the data directory holds only blobs kept on local disk,
// which only commands that build the whole application (storesBlobs) open.
func (c *cli) loadAdminConfig(storesBlobs bool) (config.Config, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return cfg, err
	}
	if cfg.Shape() == config.Production && !(storesBlobs && cfg.Bucket() == "") {
		return cfg, nil
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return cfg, fmt.Errorf("TENANTRY_DATA_DIR: %w", err)
	}
	switch info, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return cfg, fmt.Errorf("TENANTRY_DATA_DIR: the data directory %s does not exist; run this command where "+
			"tenantry's data is, or set TENANTRY_DATA_DIR to it (only `tenantry serve` creates one)", dir)
	case err != nil:
		return cfg, fmt.Errorf("TENANTRY_DATA_DIR: %w", err)
	case !info.IsDir():
		return cfg, fmt.Errorf("TENANTRY_DATA_DIR: %s is not a directory", dir)
	}
	return cfg, nil
}

// runMigrator applies, lists or reports the migrations of one database,
// writing one line per migration, or per set with none, prefixed with the
// set's label.
func runMigrator(ctx context.Context, w io.Writer, mig *migrate.Migrator, f migrateFlags, label func(set string) string) error {
	var (
		results []migrate.Result
		err     error
		line    func(m migrate.Migration) string
		none    string
	)
	switch {
	case f.history:
		results, err = mig.History(ctx)
		line = func(m migrate.Migration) string {
			return fmt.Sprintf("%s applied at %s", m.Name, m.AppliedAt.Format("2006-01-02T15:04:05Z"))
		}
		none = "no migrations applied"
	case f.dryRun:
		results, err = mig.Pending(ctx)
		line = func(m migrate.Migration) string { return "would apply " + m.Name }
		none = "up to date"
	default:
		results, err = mig.Up(ctx)
		line = func(m migrate.Migration) string { return "applied " + m.Name }
		none = "up to date"
	}
	var lines []string
	for _, r := range results {
		for _, m := range r.Migrations {
			lines = append(lines, label(r.Set)+": "+line(m))
		}
		if len(r.Migrations) == 0 && err == nil {
			lines = append(lines, label(r.Set)+": "+none)
		}
	}
	printLines(w, lines)
	return err
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
	if err := requireMigratedControl(ctx, e); err != nil {
		return err
	}

	var tenants []*tenantry.Tenant
	if f.tenantID != "" {
		t, err := tenant.FindProvisioned(ctx, e.Control, f.tenantID)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", f.tenantID, err)
		}
		tenants = []*tenantry.Tenant{t}
	} else {
		var err error
		if tenants, err = tenant.ListProvisioned(ctx, e.Control); err != nil {
			return err
		}
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
			ref := tenantdb.RefOf(t)
			label := fmt.Sprintf("tenant %s (%s)", t.ID, ref)
			if err := migrateTenant(ctx, w, e.Tenants, ref, label, f); err != nil {
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

func migrateTenant(ctx context.Context, w io.Writer, engine tenantdb.Engine, ref tenantdb.Ref, label string, f migrateFlags) error {
	db, err := engine.Open(ctx, ref, 1)
	if err != nil {
		return err
	}
	defer func(db sqldb.DB) { _ = db.Close() }(db)
	mig, err := tenantdb.Migrator(engine, db)
	if err != nil {
		return err
	}
	return runMigrator(ctx, w, mig, f, func(string) string { return label })
}

// requireMigratedControl refuses to work on a control database whose schema
// is behind this release's.
func requireMigratedControl(ctx context.Context, e *app.Engines) error {
	mig, err := e.ControlMigrator()
	if err != nil {
		return err
	}
	if current, err := mig.Current(ctx); err != nil {
		return err
	} else if !current {
		return errors.New("the control database is not migrated: run `tenantry migrate` first")
	}
	return nil
}
