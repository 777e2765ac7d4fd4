package timestamping_test

import (
	"testing"

	"github.com/tenantry/tenantry/apptest"
)

// TestMain reports how many responses the tests checked against the OpenAPI
// document, for CI to add up.
func TestMain(m *testing.M) { apptest.Main(m) }
