package document_test

import (
	"mime"
	"strings"
	"testing"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/document"
)

func TestValidFilename(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"  report.pdf ": "report.pdf", "naïve résumé.pdf": "naïve résumé.pdf", "a b (1).txt": "a b (1).txt"} {
		errs := tenantry.FieldErrors{}
		if got := document.ValidFilename(errs, "filename", in); got != want || len(errs) != 0 {
			t.Errorf("ValidFilename(%q) = %q, %v", in, got, errs)
		}
	}
	for _, bad := range []string{"", "   ", "a/b", `a\b`, "..", ".", "a\x00b", "tab\there", "new\nline", "rlo\u202Efdp.exe", strings.Repeat("x", 256), "\xff\xfe"} {
		errs := tenantry.FieldErrors{}
		document.ValidFilename(errs, "filename", bad)
		if len(errs) == 0 {
			t.Errorf("ValidFilename(%q) accepted", bad)
		}
	}
}

func TestValidMimeType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"Application/PDF": "application/pdf", "application/vnd.ms-excel": "application/vnd.ms-excel", "image/svg+xml": "image/svg+xml"} {
		errs := tenantry.FieldErrors{}
		if got := document.ValidMimeType(errs, "mime_type", in); got != want || len(errs) != 0 {
			t.Errorf("ValidMimeType(%q) = %q, %v", in, got, errs)
		}
	}
	for _, bad := range []string{"", "pdf", "text/plain; charset=utf-8", "/x", "a/", "a b/c", strings.Repeat("a", 60) + "/" + strings.Repeat("b", 60)} {
		errs := tenantry.FieldErrors{}
		document.ValidMimeType(errs, "mime_type", bad)
		if len(errs) == 0 {
			t.Errorf("ValidMimeType(%q) accepted", bad)
		}
	}
	if got := document.PartMimeType("text/plain; charset=utf-8"); got != "text/plain" {
		t.Errorf("PartMimeType = %q", got)
	}
	if got := document.PartMimeType("garbage"); got != document.DefaultMimeType {
		t.Errorf("PartMimeType(garbage) = %q", got)
	}
}

// FuzzFilename checks that any accepted filename yields a Content-Disposition
// that is a single, well-formed header value naming exactly that file.
func FuzzFilename(f *testing.F) {
	for _, s := range []string{"report.pdf", `a "quoted" name`, "日本語.txt", "semi;colon", "x\r\nSet-Cookie: a=b", "\u202E", "%41%42", "'single'", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		errs := tenantry.FieldErrors{}
		name := document.ValidFilename(errs, "filename", in)
		if len(errs) != 0 {
			return
		}
		cd := document.ContentDisposition(name)
		if strings.ContainsAny(cd, "\r\n\x00") {
			t.Fatalf("header for %q contains a line break: %q", name, cd)
		}
		disposition, params, err := mime.ParseMediaType(cd)
		if err != nil || disposition != "attachment" {
			t.Fatalf("header for %q does not parse: %q: %v", name, cd, err)
		}
		if params["filename"] != name {
			t.Fatalf("header for %q names %q", name, params["filename"])
		}
	})
}
