package api_test

import (
	"regexp"
	"testing"

	"github.com/danielgtaylor/huma/v2"

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
