package main

import "github.com/spf13/cobra"

// tenantsCommand groups the administration of tenants: each subcommand
// lives in a file of its own.
func (c *cli) tenantsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "tenants", Short: "Administer tenants"}
	cmd.AddCommand(c.tenantSubcommands()...)
	return cmd
}

// tenantSubcommands lists the tenants group's subcommands.
func (c *cli) tenantSubcommands() []*cobra.Command {
	return []*cobra.Command{
		c.tenantMoveCommand(),
		c.tenantQuotaCommand(),
		c.tenantListCommand(),
		c.tenantRestoreCommand(),
		c.tenantPurgeCommand(),
	}
}
