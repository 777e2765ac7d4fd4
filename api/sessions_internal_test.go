package api

import (
	"slices"
	"testing"
)

// Ensure the security history selects actions the API records, so that a
// renamed action cannot silently drop out of it. The impersonation actions
// are recorded by the impersonation operations.
func TestSecurityActionsAreRecorded(t *testing.T) {
	t.Parallel()
	recorded := map[string]bool{}
	for _, a := range auditActions {
		recorded[a] = true
	}
	for _, a := range slices.Concat(securityActions, securityFailures) {
		if !recorded[a] && !impersonations[a] {
			t.Errorf("%s is no operation's audit action", a)
		}
	}
}
