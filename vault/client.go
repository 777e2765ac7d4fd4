// Package vault connects tenantry to a HashiCorp Vault (or OpenBao) server:
// it signs in with a token or AppRole, keeps the token alive (renewing it
// before it expires, signing in again when it is lost), wraps the keyring's
// data keys with Transit, and reads configuration secrets from KV v2.
// Tokens and secret ids never reach a log line or an error message.
package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/tenantry/tenantry/keyring"
)

// Config says how to reach and sign in to Vault.
type Config struct {
	Addr      string
	Namespace string
	// Token, or RoleID and SecretID for AppRole.
	Token            string
	RoleID, SecretID string
	// AppRoleMount is where AppRole is mounted; "approle" by default.
	AppRoleMount string
	// TransitMount is where Transit is mounted; "transit" by default.
	TransitMount string
	// Timeout bounds each request to Vault.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Client is a signed-in Vault client whose token is kept alive.
type Client struct {
	cfg    Config
	api    *api.Client
	logger *slog.Logger

	signIn sync.Mutex // one sign-in at a time
	stop   context.CancelFunc
	done   chan struct{}
}

// Open signs in and starts keeping the token alive until Close.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("vault: VAULT_ADDR is not set")
	}
	if cfg.Token == "" && (cfg.RoleID == "" || cfg.SecretID == "") {
		return nil, errors.New("vault: set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole")
	}
	if cfg.AppRoleMount == "" {
		cfg.AppRoleMount = "approle"
	}
	if cfg.TransitMount == "" {
		cfg.TransitMount = "transit"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	conf := api.DefaultConfig()
	conf.Address = cfg.Addr
	conf.Timeout = cfg.Timeout
	// Retrying is ours to decide: a request is tried again once after
	// signing in again, and an unavailable Vault answers at once.
	conf.MaxRetries = 0
	client, err := api.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	// The client reads VAULT_TOKEN from the process environment by
	// itself; only what the configuration says counts.
	client.ClearToken()
	client.ClearNamespace()
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	c := &Client{cfg: cfg, api: client, logger: cfg.Logger, done: make(chan struct{})}
	if cfg.Token != "" {
		client.SetToken(cfg.Token)
	} else if err := c.login(ctx); err != nil {
		return nil, err
	}
	if _, err := c.tokenTTL(ctx); err != nil {
		return nil, fmt.Errorf("vault: the token is not accepted: %w", err)
	}
	keepCtx, stop := context.WithCancel(context.Background())
	c.stop = stop
	go c.keepAlive(keepCtx)
	return c, nil
}

// Close stops keeping the token alive.
func (c *Client) Close() error {
	c.stop()
	<-c.done
	return nil
}

// Ping checks that Vault answers and is unsealed, for readiness.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	h, err := c.api.Sys().HealthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("%w: vault: %v", keyring.ErrUnavailable, redact(err))
	}
	if h.Sealed {
		return fmt.Errorf("%w: vault is sealed", keyring.ErrUnavailable)
	}
	return nil
}

// login signs in with AppRole.
func (c *Client) login(ctx context.Context) error {
	c.signIn.Lock()
	defer c.signIn.Unlock()
	secret, err := c.api.Logical().WriteWithContext(ctx, "auth/"+c.cfg.AppRoleMount+"/login", map[string]any{
		"role_id": c.cfg.RoleID, "secret_id": c.cfg.SecretID,
	})
	if err != nil {
		return fmt.Errorf("vault: AppRole sign-in: %w", classify(err))
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return errors.New("vault: AppRole sign-in returned no token")
	}
	c.api.SetToken(secret.Auth.ClientToken)
	c.logger.Info("signed in to Vault with AppRole", "ttl", time.Duration(secret.Auth.LeaseDuration)*time.Second)
	return nil
}

// tokenTTL returns how long the token has left; zero for one that never
// expires.
func (c *Client) tokenTTL(ctx context.Context) (time.Duration, error) {
	secret, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return 0, classify(err)
	}
	return secret.TokenTTL()
}

// keepAlive renews the token at two thirds of its life, and signs in again
// when it can no longer be renewed (its maximum life reached, or revoked).
func (c *Client) keepAlive(ctx context.Context) {
	defer close(c.done)
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		ttl, err := c.tokenTTL(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && c.cfg.RoleID != "":
			if err := c.login(ctx); err != nil {
				c.logger.Warn("Vault sign-in failed; trying again", "error", err)
				wait = 5 * time.Second
				continue
			}
			wait = 0
			continue
		case err != nil:
			c.logger.Warn("the Vault token could not be looked up", "error", err)
			wait = 5 * time.Second
			continue
		case ttl == 0:
			return // a token that never expires
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(ttl * 2 / 3):
		}
		renewed, err := c.api.Auth().Token().RenewSelfWithContext(ctx, 0)
		if ctx.Err() != nil {
			return
		}
		if err == nil && renewed != nil && renewed.Auth != nil && renewed.Auth.LeaseDuration > 0 {
			// Near the end of its maximum life a renewal gives less than
			// asked: with AppRole, sign in again before it runs out.
			if c.cfg.RoleID != "" && time.Duration(renewed.Auth.LeaseDuration)*time.Second < ttl/2 {
				if err := c.login(ctx); err != nil {
					c.logger.Warn("Vault sign-in failed; trying again", "error", err)
				}
			}
			wait = 0
			continue
		}
		if c.cfg.RoleID != "" {
			if err := c.login(ctx); err != nil {
				c.logger.Warn("Vault sign-in failed; trying again", "error", err)
				wait = 5 * time.Second
			}
			continue
		}
		c.logger.Warn("the Vault token could not be renewed and will expire", "error", classifyOrNil(err))
		wait = 5 * time.Second
	}
}

// do runs a request, signing in again once when the token was refused.
func (c *Client) do(ctx context.Context, fn func(ctx context.Context) (*api.Secret, error)) (*api.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	secret, err := fn(ctx)
	var re *api.ResponseError
	if err != nil && c.cfg.RoleID != "" && errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		if err := c.login(ctx); err != nil {
			return nil, err
		}
		secret, err = fn(ctx)
	}
	if err != nil {
		return nil, classify(err)
	}
	return secret, nil
}

// classify turns a transport failure or a Vault that cannot serve into
// keyring.ErrUnavailable, so that callers answer 503, and keeps Vault's
// own refusals as they are.
func classify(err error) error {
	if errors.Is(err, api.ErrSecretNotFound) {
		return err
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		if re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests {
			return fmt.Errorf("%w: vault answered %d", keyring.ErrUnavailable, re.StatusCode)
		}
		return fmt.Errorf("vault refused: %w", err)
	}
	return fmt.Errorf("%w: %v", keyring.ErrUnavailable, redact(err))
}

func classifyOrNil(err error) error {
	if err == nil {
		return nil
	}
	return classify(err)
}

// redact keeps an error's message but never what the client might quote
// of a request: Vault's client errors name URLs, not tokens, but a proxy's
// answer could echo anything.
func redact(err error) string {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}
