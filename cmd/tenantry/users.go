package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/audit"
)

func (c *cli) usersCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage user accounts"}

	var admin account.AdminAccount
	var passwordFromFlag bool
	create := &cobra.Command{
		Use:   "create-admin",
		Short: "Create a platform administrator, or promote an existing account",
		Long: "Creates an account with platform administrator rights, or grants them to the existing account " +
			"with this email (its password is then left alone). For a new account the password is read " +
			"from a prompt without echo, or from the first line of standard input when it is not a terminal; " +
			"it is never printed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withApp(cmd.Context(), func(a *app.App) error {
				if !passwordFromFlag {
					exists, err := a.Accounts.Exists(cmd.Context(), admin.Email)
					if err != nil {
						return err
					}
					if !exists {
						if admin.Password, err = c.readPassword(); err != nil {
							return err
						}
					}
				}
				u, created, err := a.Accounts.EnsurePlatformAdmin(cmd.Context(), admin)
				if err != nil {
					return err
				}
				action := "user.promote_platform_admin"
				if created {
					action = "user.create_platform_admin"
				}
				if err := auditCLI(cmd.Context(), a, action, u.ID, u.Email); err != nil {
					return err
				}
				if created {
					fmt.Fprintf(c.stdout, "created platform administrator %s\n", strings.ToLower(admin.Email))
				} else {
					fmt.Fprintf(c.stdout, "%s is now a platform administrator\n", strings.ToLower(admin.Email))
				}
				return nil
			})
		},
	}
	create.Flags().StringVar(&admin.Email, "email", "", "the administrator's email (required)")
	create.Flags().StringVar(&admin.FirstName, "first-name", "Platform", "first name of a new account")
	create.Flags().StringVar(&admin.LastName, "last-name", "Administrator", "last name of a new account")
	create.Flags().StringVar(&admin.Password, "password", "", "password of a new account (prefer the prompt: flags are visible to other users of the machine)")
	_ = create.MarkFlagRequired("email")
	create.PreRun = func(cmd *cobra.Command, _ []string) { passwordFromFlag = cmd.Flags().Changed("password") }

	cmd.AddCommand(create, c.setActiveCommand("deactivate", false), c.setActiveCommand("activate", true))
	return cmd
}

func (c *cli) setActiveCommand(use string, active bool) *cobra.Command {
	var email string
	cmd := &cobra.Command{
		Use:   use,
		Short: strings.ToUpper(use[:1]) + use[1:] + " an account",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withApp(cmd.Context(), func(a *app.App) error {
				u, err := a.Accounts.SetActive(cmd.Context(), email, active)
				if err != nil {
					return err
				}
				if err := auditCLI(cmd.Context(), a, "user."+use, u.ID, u.Email); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "%s %sd\n", u.Email, use)
				return nil
			})
		},
	}
	if !active {
		cmd.Long = "Deactivates an account and revokes all its sessions: its tokens stop working at once."
	}
	cmd.Flags().StringVar(&email, "email", "", "the account's email (required)")
	_ = cmd.MarkFlagRequired("email")
	return cmd
}

// auditCLI records an administrative action taken from the command line in
// the platform's audit trail, like the API's actions: whoever runs the
// command acts as the operator, outside any account.
func auditCLI(ctx context.Context, a *app.App, action, userID, email string) error {
	return auditCommand(ctx, a, action, "user", userID, map[string]any{"email": email})
}

// auditCommand records an administrative command in the platform audit
// trail, as done from the command line on this host.
func auditCommand(ctx context.Context, a *app.App, action, targetType, targetID string, details map[string]any) error {
	details["via"] = "command line"
	encoded, _ := json.Marshal(details)
	host, _ := os.Hostname()
	return a.Audit.Append(ctx, &audit.Entry{
		Chain: audit.PlatformChain, Action: action, TargetType: targetType, TargetID: targetID,
		Outcome: audit.OutcomeSuccess, UserAgent: "tenantry " + version + " on " + host, Details: encoded,
	})
}

// withApp builds the application (migrating the control database) without
// serving HTTP, for administrative commands.
func (c *cli) withApp(ctx context.Context, fn func(*app.App) error) error {
	cfg, err := c.loadAdminConfig(true)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, newLogger("warn", c.stderr), version)
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(a)
}

// readPassword prompts on the terminal without echo, or reads one line from
// a non-terminal standard input.
func (c *cli) readPassword() (string, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(c.stderr, "Password (again): ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", err
		}
		if string(first) != string(second) {
			return "", errors.New("the passwords do not match")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password given: type it at the prompt or pipe it on standard input")
	}
	return line, nil
}
