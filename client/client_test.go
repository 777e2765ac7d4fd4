package client_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/client"
	"github.com/tenantry/tenantry/client/internal/clientgen"
	"github.com/tenantry/tenantry/config"
)

// Ensure the committed client is what the generator makes of the document
// the server serves now: a change to the API that is not regenerated
// fails here.
func TestClientIsGenerated(t *testing.T) {
	t.Parallel()
	env := apptest.StartShape(t, config.Embedded)
	doc := env.Get(t, clientgen.DocumentPath, "").Expect(t, 200, "").Body
	want, err := clientgen.Generate(doc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(clientgen.OutputFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what the generator makes of the served document; run go generate ./client", clientgen.OutputFile)
	}
}

// bearer authenticates a request with an access token.
func bearer(token string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

// Ensure the generated client works against a real server: it registers,
// signs in and reads its access token from the typed response, creates a
// tenant, uploads a document as multipart and finds it in the listing.
func TestClientWorkflow(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		ctx := t.Context()
		c, err := client.NewClientWithResponses(env.URL, client.WithHTTPClient(env.Server.Client()))
		if err != nil {
			t.Fatal(err)
		}

		email := "client." + uuid.NewString() + "@example.com"
		reg, err := c.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{FirstName: "Ada", LastName: "Client", Email: email, Password: apptest.Password})
		check(t, "register", err)
		if reg.JSON201 == nil {
			t.Fatalf("register: %d %s", reg.StatusCode(), body(reg.Body))
		}
		login, err := c.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: email, Password: apptest.Password})
		check(t, "login", err)
		if login.JSON200 == nil {
			t.Fatalf("login: %d %s", login.StatusCode(), body(login.Body))
		}
		token := login.JSON200.Data.AccessToken
		if token == "" || login.JSON200.Data.User.Id != reg.JSON201.Data.User.Id {
			t.Fatalf("login data = %+v", login.JSON200.Data)
		}
		as := bearer(token)

		created, err := c.CreateTenantWithResponse(ctx, client.CreateTenantJSONRequestBody{Name: "Client Corp"}, as)
		check(t, "create tenant", err)
		if created.JSON201 == nil {
			t.Fatalf("create tenant: %d %s", created.StatusCode(), body(created.Body))
		}
		tenantID := created.JSON201.Data.Id

		var form bytes.Buffer
		w := multipart.NewWriter(&form)
		part, err := w.CreateFormFile("file", "hello.txt")
		if err == nil {
			_, err = part.Write([]byte("hello from the generated client"))
		}
		if err == nil {
			err = w.WriteField("mime_type", "text/plain")
		}
		if err == nil {
			err = w.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		uploaded, err := c.UploadDocumentWithBodyWithResponse(ctx, tenantID, w.FormDataContentType(), &form, as)
		check(t, "upload", err)
		if uploaded.JSON201 == nil {
			t.Fatalf("upload: %d %s", uploaded.StatusCode(), body(uploaded.Body))
		}
		doc := uploaded.JSON201.Data
		if doc.Filename != "hello.txt" || doc.MimeType != "text/plain" {
			t.Fatalf("uploaded = %+v", doc)
		}

		list, err := c.ListDocumentsWithResponse(ctx, tenantID, &client.ListDocumentsParams{}, as)
		check(t, "list", err)
		if list.JSON200 == nil {
			t.Fatalf("list: %d %s", list.StatusCode(), body(list.Body))
		}
		docs := list.JSON200.Data.Documents
		if docs == nil || len(*docs) != 1 || (*docs)[0].Id != doc.Id || list.JSON200.Data.Pagination.Total != 1 {
			t.Fatalf("listing = %+v", list.JSON200.Data)
		}

		// Errors arrive typed too.
		denied, err := c.ListDocumentsWithResponse(ctx, tenantID, nil)
		check(t, "list without a token", err)
		if denied.JSON401 == nil || denied.JSON401.Error.Code != "UNAUTHORIZED" {
			t.Fatalf("without a token: %d %s", denied.StatusCode(), body(denied.Body))
		}
	})
}

func check(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func body(b []byte) string {
	if len(b) > 512 {
		return string(b[:512]) + "…"
	}
	return string(b)
}
