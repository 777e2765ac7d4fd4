package apptest

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"testing"
)

// Part is one part of a multipart upload.
type Part struct {
	Name        string
	Filename    string
	ContentType string
	Body        []byte
}

// Multipart encodes parts as a multipart/form-data body and returns it with
// its Content-Type.
func Multipart(t testing.TB, parts ...Part) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disposition := `form-data; name="` + p.Name + `"`
		if p.Filename != "" {
			disposition += `; filename="` + p.Filename + `"`
		}
		h.Set("Content-Disposition", disposition)
		if p.ContentType != "" {
			h.Set("Content-Type", p.ContentType)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write(p.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

// UploadParts posts a multipart upload to the tenant's documents.
func (e *Env) UploadParts(t testing.TB, token, tenantID string, parts ...Part) *Response {
	t.Helper()
	body, contentType := Multipart(t, parts...)
	return e.Do(t, Request{Method: http.MethodPost, Path: "/api/tenants/" + tenantID + "/documents", Token: token, Body: body, ContentType: contentType})
}

// Document is what the tests need of an uploaded document.
type Document struct {
	ID       string `json:"id"`
	Filename string `json:"filename"`
	MimeType string `json:"mime_type"`
	FileID   string `json:"file_id"`
	UserID   string `json:"user_id"`
	// TimestampStatus is the trusted time-stamp status of the file.
	TimestampStatus string `json:"timestamp_status"`
	File            struct {
		ID       string `json:"id"`
		SHA256   string `json:"sha256_hash"`
		MD5      string `json:"md5_hash"`
		S3Path   string `json:"s3_path"`
		FileSize int64  `json:"file_size"`
	} `json:"file"`
}

// Upload uploads content as filename and returns the created document.
func (e *Env) Upload(t testing.TB, u *User, tenantID, filename string, content []byte) *Document {
	t.Helper()
	res := e.UploadParts(t, u.AccessToken, tenantID, Part{Name: "file", Filename: filename, ContentType: "application/pdf", Body: content}).
		Expect(t, http.StatusCreated, "")
	var d Document
	res.Data(t, &d)
	return &d
}
