// Package vaulttest starts real Vault servers, in dev mode, for the tests of
// the Vault adapter and of the keyring on Vault. The binary is named by
// TENANTRY_TEST_VAULT_BIN (CI builds it from the module proxy); without it
// those tests are skipped, with a message saying how to enable them. Each
// test gets a server of its own, so that stopping one (Vault down) or its
// keys' fate touch no other test.
package vaulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// BinEnv names the Vault binary.
const BinEnv = "TENANTRY_TEST_VAULT_BIN"

// Server is a running dev server.
type Server struct {
	Addr      string
	RootToken string
	cmd       *exec.Cmd
	stopOnce  sync.Once
	logs      *bytes.Buffer
}

// Available reports whether a Vault binary is configured.
func Available() bool { return os.Getenv(BinEnv) != "" }

// Require skips t when no Vault binary is configured.
func Require(t testing.TB) {
	t.Helper()
	if !Available() {
		t.Skipf("Vault suite skipped: set %s to a vault binary (v1.13.0 builds from the module proxy; see .ci/run) to run it", BinEnv)
	}
}

// Start starts a dev server with Transit and AppRole enabled, stopped when
// t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	s := &Server{Addr: "http://" + addr, RootToken: "root-" + hex.EncodeToString(b), logs: &bytes.Buffer{}}
	s.cmd = exec.Command(os.Getenv(BinEnv), "server", "-dev",
		"-dev-listen-address="+addr, "-dev-root-token-id="+s.RootToken, "-dev-no-store-token")
	// A bundled driver's certificates need this on recent Go releases.
	s.cmd.Env = append(os.Environ(), "GODEBUG=x509negativeserial=1", "VAULT_DEV_ROOT_TOKEN_ID=", "HOME="+t.TempDir())
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start vault: %v", err)
	}
	t.Cleanup(s.Stop)
	root := s.Client(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		h, err := root.Sys().HealthWithContext(ctx)
		cancel()
		if err == nil && h.Initialized && !h.Sealed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault did not come up within 60 s: %v\n%s", err, s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := root.Sys().Mount("transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("enable transit: %v", err)
	}
	if err := root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatalf("enable approle: %v", err)
	}
	return s
}

// Stop stops the server; what it held is gone.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	})
}

// Client returns a client signed in with the root token.
func (s *Server) Client(t testing.TB) *api.Client {
	t.Helper()
	conf := api.DefaultConfig()
	conf.Address = s.Addr
	c, err := api.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(s.RootToken)
	return c
}

// AppRole creates a role with the given token lifetimes (a Vault duration
// such as "2s"; empty for the default) and returns its role and secret ids.
func (s *Server) AppRole(t testing.TB, name, tokenTTL, tokenMaxTTL string) (roleID, secretID string) {
	t.Helper()
	root := s.Client(t)
	if _, err := root.Logical().Write("sys/policies/acl/"+name, map[string]any{
		"policy": `path "transit/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "secret/*" { capabilities = ["read"] }`,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/approle/role/"+name, map[string]any{
		"token_policies": []string{name}, "token_ttl": tokenTTL, "token_max_ttl": tokenMaxTTL,
	}); err != nil {
		t.Fatal(err)
	}
	r, err := root.Logical().Read("auth/approle/role/" + name + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := root.Logical().Write("auth/approle/role/"+name+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(r.Data["role_id"]), fmt.Sprint(sec.Data["secret_id"])
}

// Token creates a renewable token with the root policy and the given
// lifetime (a Vault duration), for tests of its renewal.
func (s *Server) Token(t testing.TB, ttl string) string {
	t.Helper()
	secret, err := s.Client(t).Auth().Token().Create(&api.TokenCreateRequest{TTL: ttl, Renewable: ptr(true), Policies: []string{"root"}})
	if err != nil {
		t.Fatal(err)
	}
	return secret.Auth.ClientToken
}

func ptr[T any](v T) *T { return &v }
