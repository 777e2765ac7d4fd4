package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/move"
)

func (c *cli) tenantMoveCommand() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "move ID --to SERVER",
		Short: "Move a tenant's database to another server, live (production shape)",
		Long: "Copies the tenant's database to SERVER (a registered server, or default) while the tenant keeps " +
			"working, follows the writes made meanwhile, then switches the tenant over. Writes are refused " +
			"(503 with Retry-After) only during the switch; reads go on. Every API process follows the switch at " +
			"once. A move that fails, or is interrupted, leaves the tenant on its old server, working; workers " +
			"undo a move whose mover died.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withApp(cmd.Context(), func(a *app.App) error {
				if a.Mover == nil {
					return errors.New("moves are for the production shape: the embedded shape keeps every tenant database in its data directory")
				}
				mover := move.New(a.Engines.Control, a.Engines.Tenants.(move.Engine), a.Engines.Servers, a.Tenants, move.Config{
					Owner:      "tenantry tenants move",
					StaleAfter: a.Config.MoveStaleAfter,
					Logger:     a.Logger,
					Progress:   func(format string, v ...any) { fmt.Fprintf(c.stdout, format+"\n", v...) },
				})
				res, err := mover.Move(cmd.Context(), args[0], to)
				if err != nil {
					return err
				}
				return auditCommand(cmd.Context(), a, "tenant.move", "tenant", args[0], map[string]any{
					"from": res.From, "to": res.To, "took_ms": res.Took.Milliseconds(), "writes_held_ms": res.WritesHeld.Milliseconds(),
				})
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the server to move to, or default")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}
