package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/postgres"
	"github.com/tenantry/tenantry/servers"
)

func (c *cli) serversCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "servers",
		Short: "Register the PostgreSQL servers tenant databases live on (production shape)",
		Long: "With no server registered, every tenant database is on the default server, the one " +
			"TENANT_DATABASE_URL_TEMPLATE (or DATABASE_URL) points to. Once servers are registered, new tenants " +
			"go to the active server with the fewest tenants for its weight; existing tenants stay where they " +
			"are until moved (tenantry tenants move).",
	}

	var weight int
	var url string
	add := &cobra.Command{
		Use:   "add NAME --url TEMPLATE [--weight N]",
		Short: "Register a server",
		Long: "TEMPLATE is a PostgreSQL connection URL with a {database_name} placeholder, for a user that may " +
			"create databases. The server must answer (its postgres database is reached) to be registered.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withServers(cmd.Context(), func(a *app.App, reg *servers.Registry) error {
				s, err := reg.Add(cmd.Context(), args[0], url, weight, postgres.CheckServer)
				if err != nil {
					return err
				}
				if err := auditCommand(cmd.Context(), a, "server.add", "server", s.Name,
					map[string]any{"weight": s.Weight, "url": s.Redacted()}); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "registered server %s (weight %d): %s\n", s.Name, s.Weight, s.Redacted())
				return nil
			})
		},
	}
	add.Flags().StringVar(&url, "url", "", "connection URL template with {database_name}")
	add.Flags().IntVar(&weight, "weight", 1, "share of new tenants, relative to the other servers'")
	_ = add.MarkFlagRequired("url")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the registered servers, their weights, states and tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withServers(cmd.Context(), func(_ *app.App, reg *servers.Registry) error {
				list, err := reg.List(cmd.Context())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tWEIGHT\tSTATE\tTENANTS\tURL")
				for _, s := range list {
					fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\n", s.Name, s.Weight, s.State, s.Tenants, s.Redacted())
				}
				if len(list) == 0 {
					fmt.Fprintln(w, "(none: every tenant database is on the default server)")
				}
				return w.Flush()
			})
		},
	}

	state := func(use, short, to, action string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return c.withServers(cmd.Context(), func(a *app.App, reg *servers.Registry) error {
					if err := reg.SetState(cmd.Context(), args[0], to); err != nil {
						return err
					}
					if err := auditCommand(cmd.Context(), a, action, "server", args[0], map[string]any{}); err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "server %s is %s\n", args[0], to)
					return nil
				})
			},
		}
	}
	cmd.AddCommand(add, list,
		state("drain", "Take no new tenant on a server; its tenants stay until moved", servers.Draining, "server.drain"),
		state("activate", "Let a drained server take new tenants again", servers.Active, "server.activate"))
	return cmd
}

// withServers runs fn with the application and its server registry, which
// only the production shape has.
func (c *cli) withServers(ctx context.Context, fn func(*app.App, *servers.Registry) error) error {
	return c.withApp(ctx, func(a *app.App) error {
		if a.Engines.Servers == nil {
			return errors.New("database servers are for the production shape: the embedded shape keeps every tenant database in its data directory")
		}
		return fn(a, a.Engines.Servers)
	})
}
