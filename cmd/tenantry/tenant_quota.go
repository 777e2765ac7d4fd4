package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/quota"
)

// quotaFlagValues are the words a quota flag takes beside a number.
const (
	quotaDefault   = "default"
	quotaUnlimited = "unlimited"
)

func (c *cli) tenantQuotaCommand() *cobra.Command {
	values := map[quota.Kind]*string{}
	flags := map[quota.Kind]string{quota.Storage: "storage-mb", quota.Documents: "documents", quota.Members: "members"}
	cmd := &cobra.Command{
		Use:   "set-quota ID [--storage-mb N] [--documents N] [--members N]",
		Short: "Set a tenant's quotas, or show them",
		Long: "Each flag takes a whole number of 0 or more (megabytes for --storage-mb), unlimited, or default to " +
			"fall back on the configured default (TENANTRY_QUOTA_STORAGE_MB, TENANTRY_QUOTA_DOCUMENTS, " +
			"TENANTRY_QUOTA_MEMBERS). Quotas not named are left as they are; without any flag the tenant's quotas " +
			"are shown. A lower limit than what the tenant uses refuses what would add to it, and takes nothing away.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := strings.ToLower(args[0])
			if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
				return fmt.Errorf("%q is not a tenant id", args[0])
			}
			var overrides []quota.Override
			details := map[string]any{}
			for _, k := range quota.Kinds() {
				if !cmd.Flags().Changed(flags[k]) {
					continue
				}
				o, err := parseQuotaFlag(k, flags[k], *values[k])
				if err != nil {
					return err
				}
				overrides = append(overrides, o)
				details[string(k)] = strings.ToLower(strings.TrimSpace(*values[k]))
			}
			return c.withApp(cmd.Context(), func(a *app.App) error {
				var limits quota.Limits
				var err error
				if len(overrides) == 0 {
					if err := requireTenant(cmd, a, id); err != nil {
						return err
					}
					limits, err = a.Quotas.Limits(cmd.Context(), nil, id)
				} else {
					limits, err = a.Quotas.Set(cmd.Context(), id, overrides)
				}
				if err != nil {
					return err
				}
				if len(overrides) > 0 {
					if err := auditCommand(cmd.Context(), a, "tenant.set_quota", "tenant", id, details); err != nil {
						return err
					}
				}
				fmt.Fprintf(c.stdout, "tenant %s quotas:\n", id)
				for _, k := range quota.Kinds() {
					fmt.Fprintf(c.stdout, "  %-10s %s\n", k, describeLimit(k, limits.Of(k)))
				}
				return nil
			})
		},
	}
	for _, k := range quota.Kinds() {
		values[k] = cmd.Flags().String(flags[k], "", "N, unlimited or default")
	}
	return cmd
}

// requireTenant fails unless id names a provisioned tenant.
func requireTenant(cmd *cobra.Command, a *app.App, id string) error {
	var n int
	err := a.Engines.Control.QueryRow(cmd.Context(), `SELECT count(*) FROM tenants WHERE id = $1 AND provisioned_at IS NOT NULL`, id).Scan(&n)
	if err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("tenant %s not found", id)
	}
	return nil
}

// parseQuotaFlag reads one flag's value into an override.
func parseQuotaFlag(k quota.Kind, flag, value string) (quota.Override, error) {
	switch v := strings.ToLower(strings.TrimSpace(value)); v {
	case quotaDefault:
		return quota.Override{Kind: k, Default: true}, nil
	case quotaUnlimited:
		return quota.Override{Kind: k}, nil
	default:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return quota.Override{}, fmt.Errorf("--%s: %q is neither a whole number of 0 or more, %s nor %s", flag, value, quotaUnlimited, quotaDefault)
		}
		if k == quota.Storage {
			if n > math.MaxInt64>>20 {
				return quota.Override{}, fmt.Errorf("--%s: %d is too large", flag, n)
			}
			n <<= 20
		}
		return quota.Override{Kind: k, Limit: &n}, nil
	}
}

// describeLimit says a limit in the units it is set in.
func describeLimit(k quota.Kind, limit *int64) string {
	switch {
	case limit == nil:
		return quotaUnlimited
	case k != quota.Storage:
		return strconv.FormatInt(*limit, 10)
	case *limit%(1<<20) == 0:
		return strconv.FormatInt(*limit>>20, 10) + " MB"
	default:
		return strconv.FormatInt(*limit, 10) + " bytes"
	}
}
