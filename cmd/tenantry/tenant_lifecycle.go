package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/tenant"
)

// tenantArg checks a tenant id given on the command line, before anything
// is opened.
func tenantArg(arg string) (string, error) {
	id := strings.ToLower(strings.TrimSpace(arg))
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return "", fmt.Errorf("%q is not a tenant id", arg)
	}
	return id, nil
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (c *cli) tenantListCommand() *cobra.Command {
	var deleted bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tenants, or the deleted ones with when they are purged",
		Long: "Lists every tenant not purged with its server and state (active, deactivated, deleted, purging), " +
			"oldest first. With --deleted, lists the deleted tenants instead, most recently deleted first, purged " +
			"ones included: a deleted tenant can be restored until its purge is due (its deletion plus " +
			"TENANTRY_TENANT_RETENTION).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withApp(cmd.Context(), func(a *app.App) error {
				listed, err := a.Lifecycle.List(cmd.Context(), deleted)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tSERVER\tSTATE\tDELETED AT\tPURGE DUE")
				for _, t := range listed {
					server := t.Server
					if server == "" {
						server = "default"
					}
					due := when(t.PurgeDue)
					if t.State == tenant.StatePurged {
						due = "purged " + when(t.PurgedAt)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, server, t.State, when(t.DeletedAt), due)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&deleted, "deleted", false, "list the deleted tenants, purged ones included")
	return cmd
}

func (c *cli) tenantRestoreCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "restore ID",
		Short: "Restore a deleted tenant within its retention period",
		Long: "Brings a deleted tenant back as it was: its members, documents and files, and its audit trail. " +
			"Refused once its retention period (TENANTRY_TENANT_RETENTION) is over or its purge has begun, and " +
			"for a tenant that is only deactivated.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := tenantArg(args[0])
			if err != nil {
				return err
			}
			return c.withApp(cmd.Context(), func(a *app.App) error {
				t, err := a.Lifecycle.Restore(cmd.Context(), id)
				if err != nil {
					return err
				}
				if err := auditCommand(cmd.Context(), a, "tenant.restore", "tenant", id, map[string]any{"name": t.Name}); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "restored tenant %s (%s)\n", id, t.Name)
				return nil
			})
		},
	}
}

func (c *cli) tenantPurgeCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge ID [--yes]",
		Short: "Purge a deleted tenant now, for good",
		Long: "Removes a deleted tenant for good, without waiting for its retention period to end: its database, " +
			"its blobs, its members, its pending events and its audit chain. One entry in the platform's audit " +
			"chain is kept, saying what was removed and the length and last hash of the tenant's chain. Refused " +
			"for a tenant that is not deleted, and while a move of the tenant is under way. A purge that stopped " +
			"part way is finished by running it again. Asks for confirmation on the terminal unless --yes.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := tenantArg(args[0])
			if err != nil {
				return err
			}
			if !yes {
				if err := c.confirm(fmt.Sprintf("Purge tenant %s and all its data for good? Type the tenant id to confirm: ", id), id); err != nil {
					return err
				}
			}
			return c.withApp(cmd.Context(), func(a *app.App) error {
				p, err := a.Lifecycle.Purge(cmd.Context(), id)
				if err != nil {
					return err
				}
				if p.Already {
					fmt.Fprintf(c.stdout, "tenant %s (%s) was already purged at %s\n", id, p.Name, when(p.FinishedAt))
					return nil
				}
				r := p.Removed
				if err := auditCommand(cmd.Context(), a, "tenant.purge", "tenant", id, map[string]any{"name": p.Name}); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "purged tenant %s (%s): database %s dropped, %d documents, %d blobs (%d bytes), %d memberships, %d pending events, %d audit entries removed\n",
					id, p.Name, p.DatabaseName, r.Documents, r.Blobs, r.BlobBytes, r.Memberships, r.PendingEvents, r.AuditEntries)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "purge without asking")
	return cmd
}

// confirm asks on the terminal for answer to be typed. Without a terminal
// it refuses: a destructive command is confirmed by a person or by --yes,
// never by whatever happens to be piped in.
func (c *cli) confirm(prompt, answer string) error {
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return fmt.Errorf("not confirmed: standard input is not a terminal; pass --yes to go ahead")
	}
	fmt.Fprint(c.stderr, prompt)
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return fmt.Errorf("not confirmed: %w", err)
	}
	if strings.TrimSpace(line) != answer {
		return fmt.Errorf("not confirmed: nothing was purged")
	}
	return nil
}
