package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/mail"
)

func (c *cli) mailCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "mail", Short: "Check mail delivery"}
	var to, locale string
	test := &cobra.Command{
		Use:   "test",
		Short: "Send a test mail now, through the configured transport",
		Long: "Renders the test template and sends it at once through SMTP (SMTP_HOST) or, with no SMTP server " +
			"configured, writes it as an .eml file under $TENANTRY_DATA_DIR/mail. Exits non-zero, saying why, " +
			"when the mail could not be sent. The delivery is recorded like any other (GET /api/admin/mail).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withApp(cmd.Context(), func(a *app.App) error {
				d, err := a.Mailer.SendTest(cmd.Context(), to, locale)
				if err != nil {
					return fmt.Errorf("test mail to %s through %s: %w", to, a.Mailer.Sender().Describe(), err)
				}
				fmt.Fprintf(c.stdout, "test mail %s sent to %s through %s\n", d.ID, d.To, a.Mailer.Sender().Describe())
				if ds, ok := a.Mailer.Sender().(*mail.DirSender); ok {
					fmt.Fprintf(c.stdout, "no SMTP server is configured (SMTP_HOST): the mail is a file in %s\n", ds.Dir())
				}
				return nil
			})
		},
	}
	test.Flags().StringVar(&to, "to", "", "the address to send to (required)")
	test.Flags().StringVar(&locale, "locale", mail.DefaultLocale, "the language of the mail: en or fr")
	_ = test.MarkFlagRequired("to")
	cmd.AddCommand(test)
	return cmd
}
