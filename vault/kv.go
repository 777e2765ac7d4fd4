package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/api"
)

// ReadSecrets reads the KV v2 secret at path, written as MOUNT/PATH (for
// example "secret/tenantry"), as strings. A value that is not a string is
// refused rather than guessed at.
func (c *Client) ReadSecrets(ctx context.Context, path string) (map[string]string, error) {
	mount, rest, ok := strings.Cut(strings.Trim(path, "/"), "/")
	if !ok || mount == "" || rest == "" {
		return nil, fmt.Errorf("VAULT_SECRETS_PATH: %q is not MOUNT/PATH, such as secret/tenantry", path)
	}
	var kv *api.KVSecret
	if _, err := c.do(ctx, func(ctx context.Context) (*api.Secret, error) {
		var err error
		kv, err = c.api.KVv2(mount).Get(ctx, rest)
		return nil, err
	}); err != nil {
		if errors.Is(err, api.ErrSecretNotFound) {
			return nil, fmt.Errorf("VAULT_SECRETS_PATH: no secret at %s", path)
		}
		return nil, fmt.Errorf("VAULT_SECRETS_PATH: read %s: %w", path, err)
	}
	out := make(map[string]string, len(kv.Data))
	for k, v := range kv.Data {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("VAULT_SECRETS_PATH: %s in %s is not a string", k, path)
		}
		out[k] = s
	}
	return out, nil
}

// Source says where a configuration secret came from.
type Source string

// Sources of configuration secrets.
const (
	FromEnvironment Source = "environment"
	FromVault       Source = "vault"
	Unset           Source = "unset"
)

// Overlay fills the names in environ that are empty from secrets, the
// environment winning, and says where each came from. environ is not
// changed.
func Overlay(environ, secrets map[string]string, names []string) (map[string]string, map[string]Source) {
	merged := make(map[string]string, len(environ)+len(names))
	for k, v := range environ {
		merged[k] = v
	}
	sources := make(map[string]Source, len(names))
	for _, name := range names {
		switch {
		case environ[name] != "":
			sources[name] = FromEnvironment
		case secrets[name] != "":
			merged[name] = secrets[name]
			sources[name] = FromVault
		default:
			sources[name] = Unset
		}
	}
	return merged, sources
}
