package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// secrets is what must never be seen, each in every form it could be
// written in.
type secrets map[string][][]byte

func (s secrets) add(name string, raw []byte) {
	if len(raw) == 0 {
		return
	}
	s[name] = append(s[name], raw, []byte(hex.EncodeToString(raw)), []byte(strings.ToUpper(hex.EncodeToString(raw))),
		[]byte(base64.StdEncoding.EncodeToString(raw)), []byte(base64.RawURLEncoding.EncodeToString(raw)))
}

// check fails the test when any form of any secret is in what was seen.
func (s secrets) check(t *testing.T, where string, seen []byte) {
	t.Helper()
	for name, forms := range s {
		for _, f := range forms {
			if bytes.Contains(seen, f) {
				t.Errorf("%s holds %s", where, name)
				break
			}
		}
	}
}

// Across a session of everything the product does with keys and secrets
// (sign-in, tenants, sealed documents, a server with a password, a key
// rotation, bad requests), no response and no log line holds the master
// key, a data key, the token-signing secret, a server's password, or an
// access or refresh token; responses hold only the tokens they hand out.
func TestNoKeyMaterialInResponsesOrLogs(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		cfg.BlobEncryption = "on"
		env := apptest.Start(t, cfg)
		var mu sync.Mutex
		var responses []*apptest.Response
		env.OnResponse = func(r *apptest.Response) {
			mu.Lock()
			defer mu.Unlock()
			responses = append(responses, r)
		}
		ctx := context.Background()

		admin := env.SignUp(t, "Keeper")
		tenantID := env.CreateTenant(t, admin, "Vault")
		body := bytes.Repeat([]byte("sealed document "), 10000)
		doc := env.Upload(t, admin, tenantID, "sealed.bin", body)
		docPath := "/api/tenants/" + tenantID + "/documents/" + doc.ID
		env.Get(t, docPath+"/download", admin.AccessToken).Expect(t, http.StatusOK, "")
		env.Do(t, apptest.Request{Method: http.MethodGet, Path: docPath + "/download", Token: admin.AccessToken,
			Header: http.Header{"Range": {"bytes=70000-70100"}}}).Expect(t, http.StatusPartialContent, "")
		env.Get(t, docPath+"/download-url", admin.AccessToken).Expect(t, http.StatusOK, "")
		env.Get(t, "/api/tenants/"+tenantID+"/audit", admin.AccessToken).Expect(t, http.StatusOK, "")
		env.Get(t, "/api/tenants/"+tenantID+"/storage", admin.AccessToken).Expect(t, http.StatusOK, "")
		env.Get(t, "/api/tenants/"+tenantID+"/documents", "not-a-token").Expect(t, http.StatusUnauthorized, "")
		env.Get(t, "/ready", "").Expect(t, http.StatusOK, "")
		refreshed := env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/refresh", Token: admin.RefreshToken}).Expect(t, http.StatusOK, "")

		const serverPassword = "Server-Passw0rd-Nobody-Sees"
		if reg := env.App.Engines.Servers; reg != nil {
			if _, err := reg.Add(ctx, "spare", "postgres://tenantry:"+serverPassword+"@db.example.com/{database_name}", 1, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := env.App.Keys.Rotate(ctx, tenantID); err != nil {
			t.Fatal(err)
		}
		if _, err := env.App.Keys.Maintain(ctx, 0, env.App.SealedValues()); err != nil {
			t.Fatal(err)
		}
		env.Upload(t, admin, tenantID, "after-rotation.bin", []byte("sealed with version 2"))
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/logout", Token: admin.AccessToken})

		never := secrets{}
		never.add("the server's password", []byte(serverPassword))
		jwtKey, masterKey := []byte(cfg.JWTSecretKey), []byte(cfg.MasterKey)
		if shape == config.Embedded {
			jwtKey = readSecretFile(t, cfg, "jwt_secret")
			masterKey = readSecretFile(t, cfg, "master_key")
			raw, err := hex.DecodeString(string(masterKey))
			if err != nil {
				t.Fatal(err)
			}
			never.add("the master key", raw)
		} else {
			raw, err := config.DecodeMasterKey(cfg.MasterKey)
			if err != nil {
				t.Fatal(err)
			}
			never.add("the master key", raw)
		}
		never.add("the token-signing secret", jwtKey)
		never.add("the master key as configured", masterKey)
		dataKeys := unwrappedDataKeys(t, env)
		if len(dataKeys) < 2 {
			t.Fatalf("%d data keys made, want at least the two versions of the tenant's", len(dataKeys))
		}
		for i, k := range dataKeys {
			never.add(fmt.Sprintf("data key %d", i), k)
		}

		mu.Lock()
		defer mu.Unlock()
		for i, r := range responses {
			var headers bytes.Buffer
			_ = r.Header.Write(&headers)
			never.check(t, fmt.Sprintf("response %d", i), append(headers.Bytes(), r.Body...))
		}
		tokens := secrets{}
		tokens.add("an access token", []byte(admin.AccessToken))
		tokens.add("a refresh token", []byte(admin.RefreshToken))
		var issued struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		refreshed.Data(t, &issued)
		tokens.add("a refreshed access token", []byte(issued.AccessToken))
		tokens.add("a refreshed refresh token", []byte(issued.RefreshToken))
		logs := []byte(env.Logs.String())
		if len(logs) == 0 {
			t.Fatal("nothing was logged: the check would prove nothing")
		}
		never.check(t, "the log", logs)
		tokens.check(t, "the log", logs)
	})
}

func readSecretFile(t *testing.T, cfg config.Config, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, "secrets", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

// unwrappedDataKeys returns every data key the keyring made, unwrapped as
// the keyring itself unwraps them.
func unwrappedDataKeys(t *testing.T, env *apptest.Env) [][]byte {
	t.Helper()
	ctx := context.Background()
	rows, err := env.App.Engines.Control.Query(ctx, `SELECT scope, version, wrapped FROM data_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var scope string
		var version int
		var wrapped []byte
		if err := rows.Scan(&scope, &version, &wrapped); err != nil {
			t.Fatal(err)
		}
		key, err := env.App.Keys.Wrapper().Unwrap(ctx, scope, version, wrapped)
		if err != nil {
			t.Fatalf("unwrap %s v%d: %v", scope, version, err)
		}
		if len(key) != 32 {
			t.Fatalf("data key of %d bytes", len(key))
		}
		out = append(out, key)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
