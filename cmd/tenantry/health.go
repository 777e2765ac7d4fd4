package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantry/tenantry/config"
)

// healthCommand probes a running process, for container health checks in
// images that have no shell or HTTP client besides tenantry itself.
func (c *cli) healthCommand() *cobra.Command {
	var (
		target  string
		ready   bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check that a running serve or worker answers its health probe",
		Long: "Sends GET to the /health endpoint (/ready with --ready) of the process configured by this " +
			"environment: its private listener (TENANTRY_METRICS_ADDR), or with metrics off the API " +
			"(TENANTRY_ADDR, serve only), on this host. --url probes any address instead. The exit status is " +
			"zero only for a 2xx answer within --timeout.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target == "" {
				cfg, err := c.loadConfig()
				if err != nil {
					return err
				}
				path := "/health"
				if ready {
					path = "/ready"
				}
				if target, err = probeURL(cfg, path); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			status, err := probe(ctx, target)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%s: %s\n", target, status)
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "probe this URL instead of the configured process's health endpoint")
	cmd.Flags().BoolVar(&ready, "ready", false, "probe readiness (/ready: the database and every configured engine) rather than liveness")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return cmd
}

// probeURL returns the URL of the configured process's health endpoint on
// this host: a listener bound to every address, or to a name, is reached
// on loopback.
func probeURL(cfg config.Config, path string) (string, error) {
	addr, name := cfg.MetricsAddr, "TENANTRY_METRICS_ADDR"
	if !cfg.Metrics() {
		addr, name = cfg.Addr, "TENANTRY_ADDR"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s: %q is not host:port", name, addr)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// probe sends GET to url and returns the answer's status if it is 2xx.
func probe(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("--url %q: %w", url, err)
	}
	// A probe must not be redirected somewhere it was not sent.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: %w", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return "", fmt.Errorf("%s answered %s: %s", url, res.Status, strings.TrimSpace(string(body)))
	}
	return res.Status, nil
}
