package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/config"
)

// seedBodies are JSON bodies that reach different validation paths.
var seedBodies = []string{ //nolint:gochecknoglobals // read-only seed corpus
	`{}`, `null`, `[]`, `""`, `0`, `{"name":"Acme"}`, `{"name":""}`, `{"name":null}`, `{"name":"\u0000"}`,
	`{"email":"a@example.com","password":"x"}`, `{"email":["a"],"password":{}}`,
	`{"first_name":"A","last_name":"B","email":"a@example.com","password":"abcdefg1"}`,
	`{"first_name":"` + "\xff\xfe" + `","last_name":"B","email":"a@b.c","password":"abcdefg1"}`,
	`{"is_active":false}`, `{"is_active":"no"}`, `{"name":"x","extra":1}`, `{"name":1e999}`,
	`{"email":"` + string(make([]byte, 300)) + `"}`, `{`, `{"a":`, "\x00",
}

// fuzzEndpoint sends arbitrary bodies to one endpoint and fails on any
// answer that is not a well-formed envelope below 500.
func fuzzEndpoint(f *testing.F, method string, path func(env *apptest.Env, token string) string) {
	for _, s := range seedBodies {
		f.Add([]byte(s))
	}
	env := apptest.StartShape(f, config.Embedded)
	owner := env.SignUp(f, "Fuzzer")
	target := path(env, owner.AccessToken)
	f.Fuzz(func(t *testing.T, body []byte) {
		res := env.Do(t, apptest.Request{Method: method, Path: target, Body: body, ContentType: "application/json", Token: owner.AccessToken})
		if res.Status >= 500 {
			t.Fatalf("%s %s answered %d to %q: %s", method, target, res.Status, body, res.Body)
		}
		var envelope struct {
			Success *bool           `json:"success"`
			Error   json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(res.Body, &envelope); err != nil || envelope.Success == nil {
			t.Fatalf("answer to %q is not an envelope: %s", body, res.Body)
		}
		if !*envelope.Success && res.ErrorCode(t) == "" {
			t.Fatalf("error without a code: %s", res.Body)
		}
	})
}

func FuzzRegisterBody(f *testing.F) {
	fuzzEndpoint(f, http.MethodPost, func(*apptest.Env, string) string { return "/api/auth/register" })
}

func FuzzLoginBody(f *testing.F) {
	fuzzEndpoint(f, http.MethodPost, func(*apptest.Env, string) string { return "/api/auth/login" })
}

func FuzzTenantCreateBody(f *testing.F) {
	fuzzEndpoint(f, http.MethodPost, func(*apptest.Env, string) string { return "/api/tenants" })
}

func FuzzTenantUpdateBody(f *testing.F) {
	fuzzEndpoint(f, http.MethodPut, func(env *apptest.Env, token string) string {
		return "/api/tenants/" + env.CreateTenant(f, &apptest.User{AccessToken: token}, "Fuzzed")
	})
}

// FuzzUploadBody sends arbitrary bodies as multipart uploads: the answer is
// a 201 or a 4xx envelope, never a server error, and nothing temporary is
// left behind.
func FuzzUploadBody(f *testing.F) {
	const boundary = "fuzzboundary"
	part := func(headers, body string) string {
		return "--" + boundary + "\r\n" + headers + "\r\n\r\n" + body + "\r\n"
	}
	end := "--" + boundary + "--\r\n"
	for _, s := range []string{
		part(`Content-Disposition: form-data; name="file"; filename="a.txt"`, "hello") + end,
		part(`Content-Disposition: form-data; name="file"; filename="a.txt"`+"\r\nContent-Type: text/plain; charset=utf-8", "hi") +
			part(`Content-Disposition: form-data; name="filename"`, "b.txt") + end,
		part(`Content-Disposition: form-data; name="file"; filename="../../x"`, "x") + end,
		part(`Content-Disposition: form-data; name="file"; filename*=UTF-8''%E2%80%AEx`, "x") + end,
		part(`Content-Disposition: form-data; name="mime_type"`, "a/b") + part(`Content-Disposition: form-data; name="file"; filename="c"`, "") + end,
		part(`Content-Disposition: form-data; name="file"`, "no filename") + end,
		part(`Content-Disposition: form-data; name="file"; filename="a"`, "unterminated"),
		"--" + boundary + "\r\n\r\n" + end, "", "garbage", end,
	} {
		f.Add([]byte(s))
	}
	env := apptest.StartShape(f, config.Embedded)
	owner := env.SignUp(f, "Uploader")
	tenantID := env.CreateTenant(f, owner, "Fuzzed")
	var prefix string
	var tn struct {
		DatabaseName string `json:"database_name"`
	}
	env.Get(f, "/api/tenants/"+tenantID, owner.AccessToken).Expect(f, 200, "").Data(f, &tn)
	prefix = "tenants/" + tn.DatabaseName + "/tmp/"
	f.Fuzz(func(t *testing.T, body []byte) {
		res := env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + tenantID + "/documents", Token: owner.AccessToken,
			Body: body, ContentType: "multipart/form-data; boundary=" + boundary})
		if res.Status >= 500 {
			t.Fatalf("upload of %q answered %d: %s", body, res.Status, res.Body)
		}
		if res.Status != http.StatusCreated && res.ErrorCode(t) == "" {
			t.Fatalf("error without a code: %s", res.Body)
		}
		leftovers := 0
		_ = env.App.Blobs.List(t.Context(), prefix, func(blob.Info) error { leftovers++; return nil })
		if leftovers != 0 {
			t.Fatalf("upload of %q left %d temporary blobs", body, leftovers)
		}
	})
}
