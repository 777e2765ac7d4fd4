// Command generate regenerates the client package from the OpenAPI document
// tenantry serves. Run it through go generate in the client directory.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tenantry/tenantry/client/internal/clientgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run() error {
	doc, err := clientgen.ServedDocument(context.Background())
	if err != nil {
		return err
	}
	code, err := clientgen.Generate(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(clientgen.OutputFile, code, 0o644)
}
