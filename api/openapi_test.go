package api_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// huma silently ignores parameters declared in unexported embedded structs;
// such a route would run with empty path values. Ensure every path
// parameter of every operation is declared, and every operation documented.
func TestEveryPathParameterIsDeclared(t *testing.T) {
	t.Parallel()
	env := apptest.StartShape(t, config.Embedded)
	param := regexp.MustCompile(`\{([a-z_]+)\}`)
	operations := 0
	for path, item := range env.App.Server.OpenAPI().Paths {
		for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PUT": item.Put, "DELETE": item.Delete} {
			if op == nil {
				continue
			}
			operations++
			if op.Summary == "" {
				t.Errorf("%s %s has no summary", method, path)
			}
			declared := map[string]bool{}
			for _, p := range op.Parameters {
				if p.In == "path" {
					declared[p.Name] = true
				}
			}
			for _, m := range param.FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] {
					t.Errorf("%s %s does not declare its path parameter %q", method, path, m[1])
				}
			}
		}
	}
	if operations < 30 {
		t.Fatalf("only %d operations documented", operations)
	}
}

// lintDocument is what this test reads of a served document.
type lintDocument struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		License *struct {
			Name string `json:"name"`
			URL  string `json:"url"`
		} `json:"license"`
	} `json:"info"`
	Servers []struct {
		URL string `json:"url"`
	} `json:"servers"`
	Tags []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"tags"`
	Paths map[string]map[string]struct {
		OperationID string                 `json:"operationId"`
		Summary     string                 `json:"summary"`
		Description string                 `json:"description"`
		Tags        []string               `json:"tags"`
		Security    *[]map[string][]string `json:"security"`
		Responses   map[string]struct {
			Headers map[string]json.RawMessage `json:"headers"`
		} `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]json.RawMessage `json:"schemas"`
	} `json:"components"`
}

// Ensure both served forms of the document, OpenAPI 3.1 and its 3.0
// rendering, are valid and pass the rules OpenAPI linters apply: component
// names they accept, a server, a license, declared and described tags, a
// description and an explicit security requirement on every operation
// (empty for public ones), and in 3.0 no keyword 3.0 lacks.
func TestOpenAPIDocumentIsLintClean(t *testing.T) {
	t.Parallel()
	env := apptest.StartShape(t, config.Embedded)
	componentName := regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	for path, version := range map[string]string{"/api/docs/openapi.json": "3.1.", "/api/docs/openapi-3.0.json": "3.0."} {
		t.Run(strings.TrimPrefix(path, "/api/docs/"), func(t *testing.T) {
			res := env.Get(t, path, "").Expect(t, 200, "")
			var doc lintDocument
			res.Decode(t, &doc)
			if !strings.HasPrefix(doc.OpenAPI, version) {
				t.Fatalf("openapi = %q, want %s*", doc.OpenAPI, version)
			}
			parsed, err := libopenapi.NewDocument(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			v, errs := validator.NewValidator(parsed)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if valid, problems := v.ValidateDocument(); !valid {
				for _, p := range problems {
					t.Errorf("invalid OpenAPI %s: %s: %s", doc.OpenAPI, p.Message, p.Reason)
				}
			}

			if doc.Info.License == nil || doc.Info.License.Name != "MIT" || doc.Info.License.URL == "" {
				t.Errorf("license = %+v, want MIT with its URL", doc.Info.License)
			}
			if len(doc.Servers) == 0 || doc.Servers[0].URL == "" {
				t.Errorf("servers = %+v", doc.Servers)
			}
			declared := map[string]bool{}
			for _, tag := range doc.Tags {
				declared[tag.Name] = true
				if tag.Description == "" {
					t.Errorf("tag %s has no description", tag.Name)
				}
			}
			for name := range doc.Components.Schemas {
				if !componentName.MatchString(name) {
					t.Errorf("component name %q is not a valid OpenAPI component name", name)
				}
			}
			for p, item := range doc.Paths {
				for method, op := range item {
					where := strings.ToUpper(method) + " " + p
					if op.Description == "" || op.Summary == "" || op.OperationID == "" {
						t.Errorf("%s lacks a summary, a description or an operation id", where)
					}
					if op.Security == nil {
						t.Errorf("%s has no security requirement (public operations declare an empty one)", where)
					}
					if len(op.Tags) == 0 {
						t.Errorf("%s has no tag", where)
					}
					for _, tag := range op.Tags {
						if !declared[tag] {
							t.Errorf("%s uses the undeclared tag %q", where, tag)
						}
					}
					if _, ok := op.Responses["422"]; ok {
						t.Errorf("%s documents 422, which tenantry never answers", where)
					}
					if slices.Contains([]string{"login", "refresh"}, op.OperationID) && op.Responses["200"].Headers["Cache-Control"] == nil {
						t.Errorf("%s does not document its Cache-Control header", where)
					}
				}
			}
			if version == "3.0." {
				var tree any
				res.Decode(t, &tree)
				checkOpenAPI30(t, "#", tree)
			}
		})
	}
}

// checkOpenAPI30 reports what OpenAPI 3.0 does not allow: keywords of
// later JSON Schema drafts, type arrays, and siblings of $ref.
func checkOpenAPI30(t *testing.T, at string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		if _, ref := v["$ref"]; ref && len(v) > 1 {
			t.Errorf("%s: $ref has siblings", at)
		}
		if _, isArray := v["type"].([]any); isArray {
			t.Errorf("%s: type is an array", at)
		}
		for _, k := range []string{"contentMediaType", "patternDescription", "const"} {
			if _, ok := v[k]; ok && !strings.HasSuffix(at, "/properties") {
				t.Errorf("%s: %s is not an OpenAPI 3.0 schema keyword", at, k)
			}
		}
		if _, ok := v["examples"].([]any); ok {
			t.Errorf("%s: examples is a list, as in JSON Schema, not an OpenAPI 3.0 map", at)
		}
		for k, child := range v {
			checkOpenAPI30(t, at+"/"+k, child)
		}
	case []any:
		for _, child := range v {
			checkOpenAPI30(t, at+"/[]", child)
		}
	}
}
