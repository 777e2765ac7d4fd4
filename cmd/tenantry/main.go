// Command tenantry runs the tenantry backend and its administrative tasks.
// With no configuration it runs the embedded shape (SQLite and local files
// under ./data); with DATABASE_URL set it runs on PostgreSQL.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/logbuf"
	"github.com/tenantry/tenantry/vault"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts a graceful shutdown, restore the
		// default handling: a second signal ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], nil, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is what every command shares: where it reads and writes, and which
// environment it reads its configuration from (nil: the process
// environment).
type cli struct {
	environ map[string]string
	// secretSources says where each configuration secret came from,
	// when some may have come from Vault.
	secretSources map[string]vault.Source
	stdin         io.Reader
	stdout        io.Writer
	stderr        io.Writer
}

// run executes one command line and returns the process exit status.
func run(ctx context.Context, args []string, environ map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{environ: environ, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "tenantry",
		Short:         "Multi-tenant SaaS backend",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		c.serveCommand(),
		c.workerCommand(),
		c.migrateCommand(),
		c.usersCommand(),
		c.tenantsCommand(),
		c.serversCommand(),
		c.keysCommand(),
		c.secretsCommand(),
		c.auditCommand(),
		c.mailCommand(),
		c.healthCommand(),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(stdout, "tenantry", version) },
		},
	)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", describe(err))
		return 1
	}
	return 0
}

// describe renders an error for a person at a terminal: a domain error by
// its message and per-field details, anything else as it is.
func describe(err error) string {
	var te *tenantry.Error
	if !errors.As(err, &te) {
		return err.Error()
	}
	var b strings.Builder
	b.WriteString(te.Message)
	if fields, ok := te.Details.(map[string][]string); ok {
		names := make([]string, 0, len(fields))
		for name := range fields {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Fprintf(&b, "\n  %s: %s", name, strings.Join(fields[name], "; "))
		}
	}
	return b.String()
}

func newLogger(level string, w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: parseLevel(level)}))
}

func parseLevel(level string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		l = slog.LevelInfo
	}
	return l
}

// Log lines of the long-running commands are batched: up to logBufferSize
// bytes, written out at least every logFlushInterval, and at once from
// warnings up.
const (
	logBufferSize    = 64 << 10
	logFlushInterval = 100 * time.Millisecond
)

// serverLogger returns the logger of a long-running command, writing to
// stderr through a buffer that close writes out.
func (c *cli) serverLogger(level string) (logger *slog.Logger, sink *logbuf.Writer) {
	sink = logbuf.NewWriter(c.stderr, logBufferSize, logFlushInterval)
	h := slog.NewJSONHandler(sink, &slog.HandlerOptions{Level: parseLevel(level)})
	return slog.New(logbuf.Handler(h, sink, slog.LevelWarn)), sink
}

func (c *cli) loadConfig() (config.Config, error) {
	environ, sources, err := c.environWithSecrets()
	if err != nil {
		return config.Config{}, err
	}
	c.secretSources = sources
	return config.Load(environ)
}

func (c *cli) serveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			memory := newMemoryPolicy(cfg, os.LookupEnv, os.DirFS("/"))
			memoryAttrs := memory.apply()
			logger, logs := c.serverLogger(cfg.LogLevel)
			defer logs.Close()
			logSecretSources(logger, c.secretSources)
			ctx := cmd.Context()
			a, err := app.New(ctx, cfg, logger, version)
			if err != nil {
				return err
			}
			defer a.Close()
			releaseMemory()
			go memory.run(ctx)
			if err := c.servePrivate(ctx, a, logger); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				return err
			}
			attrs := []any{"addr", ln.Addr().String(), "shape", string(cfg.Shape()), "version", version}
			attrs = append(attrs, memoryAttrs...)
			if cfg.Shape() == config.Embedded {
				dir, _ := filepath.Abs(cfg.DataDir)
				attrs = append(attrs, "data_dir", dir)
			}
			logger.Info("tenantry listening", attrs...)
			// Whoever waits for this line need not wait for the next flush.
			_ = logs.Flush()
			return a.Serve(ctx, ln)
		},
	}
}

func (c *cli) workerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run background work: jobs, the event relay and event consumers (production shape)",
		Long: "Works the job queue (periodic maintenance included), relays committed events to Kafka (or to " +
			"in-process consumers without it) and consumes them. Several workers may run at once: each job and " +
			"each event is handled once. The embedded shape does all of this inside serve.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			if cfg.Shape() == config.Embedded {
				return errors.New("the embedded shape runs jobs and events inside `tenantry serve`; set DATABASE_URL to run workers")
			}
			memory := newMemoryPolicy(cfg, os.LookupEnv, os.DirFS("/"))
			memoryAttrs := memory.apply()
			logger, logs := c.serverLogger(cfg.LogLevel)
			defer logs.Close()
			logSecretSources(logger, c.secretSources)
			ctx := cmd.Context()
			a, err := app.New(ctx, cfg, logger, version, app.AsWorker())
			if err != nil {
				return err
			}
			defer a.Close()
			releaseMemory()
			go memory.run(ctx)
			if err := c.servePrivate(ctx, a, logger); err != nil {
				return err
			}
			if err := a.Start(ctx); err != nil {
				return err
			}
			attrs := []any{"shape", string(cfg.Shape()), "events", cfg.Summary()["events"], "version", version}
			logger.Info("tenantry worker running", append(attrs, memoryAttrs...)...)
			<-ctx.Done()
			logger.Info("tenantry worker stopping")
			return nil
		},
	}
}

// servePrivate serves the App's private handler (metrics, health, and the
// profiler when asked) on TENANTRY_METRICS_ADDR until ctx ends, unless
// metrics are off.
func (c *cli) servePrivate(ctx context.Context, a *app.App, logger *slog.Logger) error {
	h := a.PrivateHandler()
	if h == nil {
		return nil
	}
	ln, err := net.Listen("tcp", a.Config.MetricsAddr)
	if err != nil {
		return fmt.Errorf("TENANTRY_METRICS_ADDR %s: %w (choose a free address, or off)", a.Config.MetricsAddr, err)
	}
	logger.Info("metrics listening", "addr", ln.Addr().String(), "pprof", a.Config.PProf)
	go func() {
		if err := app.Serve(ctx, ln, h, time.Second, logger); err != nil {
			logger.Error("metrics listener stopped", "error", err)
		}
	}()
	return nil
}
