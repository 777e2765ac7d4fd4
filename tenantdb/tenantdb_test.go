package tenantdb_test

import (
	"strings"
	"testing"

	"github.com/tenantry/tenantry/tenantdb"
)

func TestName(t *testing.T) {
	t.Parallel()
	const id = "0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11"
	tests := []struct {
		display string
		want    string
	}{
		{"Acme Corporation", "tenant_acme_corporation_2c0c9a11"},
		{"  Société Générale  ", "tenant_societe_generale_2c0c9a11"},
		{"Müller & Söhne GmbH", "tenant_muller_sohne_gmbh_2c0c9a11"},
		{"!!!", "tenant_2c0c9a11"},
		{"日本語", "tenant_2c0c9a11"},
		{"a--b__c  d", "tenant_a_b_c_d_2c0c9a11"},
		{`"; DROP DATABASE x; --`, "tenant_drop_database_x_2c0c9a11"},
		{strings.Repeat("é", 300), "tenant_" + strings.Repeat("e", 47) + "_2c0c9a11"},
		{strings.Repeat("ab ", 40), "tenant_" + strings.TrimSuffix(strings.Repeat("ab_", 16), "_") + "_2c0c9a11"},
	}
	for _, tt := range tests {
		got := tenantdb.Name(tt.display, id)
		if got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.display, got, tt.want)
		}
		if !tenantdb.ValidName(got) || len(got) > tenantdb.MaxNameLength {
			t.Errorf("Name(%q) = %q is not a valid database name", tt.display, got)
		}
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "Tenant", "tenant-x", "tenant x", `a"b`, "../etc", strings.Repeat("a", 64), "tenant_é"} {
		if tenantdb.ValidName(bad) {
			t.Errorf("ValidName(%q) = true", bad)
		}
	}
}

func FuzzName(f *testing.F) {
	for _, s := range []string{"Acme", "Société", "", "\x00\xff", strings.Repeat("ß", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, display string) {
		got := tenantdb.Name(display, "0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11")
		if !tenantdb.ValidName(got) {
			t.Fatalf("Name(%q) = %q is not a valid database name", display, got)
		}
		if strings.Contains(got, "__") || strings.HasSuffix(got, "_") {
			t.Fatalf("Name(%q) = %q has empty words", display, got)
		}
	})
}
