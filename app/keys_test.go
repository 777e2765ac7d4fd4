package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/servers"
)

// The key job rotates a key once it reaches the rotation period, records it
// in the platform's audit trail, and moves the stored secrets the older
// version sealed to the new one, which still open as before.
func TestScheduledKeyRotation(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		cfg.MaintenanceInterval = time.Second
		cfg.KeyRotation = 2 * time.Second
		env := apptest.Start(t, cfg)
		ctx := context.Background()
		reg := servers.NewRegistry(env.App.Engines.Control)
		reg.SealWith(env.App.Keys)
		const template = "postgres://tenantry:very-secret@db.example.com/{database_name}"
		if _, err := reg.Add(ctx, "spare", template, 1, nil); err != nil {
			t.Fatal(err)
		}
		first, err := env.App.Keys.Status(ctx)
		if err != nil || len(first) != 1 || first[0].Scope != keyring.Platform || first[0].Newest != 1 {
			t.Fatalf("keys before any rotation: %+v, %v", first, err)
		}

		deadline := time.Now().Add(45 * time.Second)
		for {
			status, err := env.App.Keys.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			old, err := env.App.Keys.OldVersionsInUse(ctx, env.App.SealedValues())
			if err != nil {
				t.Fatal(err)
			}
			if status[0].Newest > 1 && len(old) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 45 s the platform key is at %+v and older versions still seal %+v", status[0], old)
			}
			time.Sleep(200 * time.Millisecond)
		}
		got, err := servers.NewRegistry(env.App.Engines.Control).List(ctx)
		if err != nil || len(got) != 1 || got[0].URLTemplate != servers.Redact(template) {
			t.Fatalf("listed servers: %+v, %v", got, err)
		}
		fresh := servers.NewRegistry(env.App.Engines.Control)
		fresh.SealWith(env.App.Keys)
		if tpl, err := fresh.URLTemplate(ctx, "spare"); err != nil || tpl != template {
			t.Fatalf("the resealed template opens as %q, %v", tpl, err)
		}
		// The job records each rotation once its re-sealing is done, so
		// possibly just after the loop above saw it done.
		for {
			entries, _, err := env.App.Audit.List(ctx, audit.PlatformChain, audit.Filter{Action: "keys.rotate", PerPage: 10})
			if err == nil && len(entries) > 0 && entries[0].TargetID == keyring.Platform {
				break
			}
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("no scheduled rotation in the platform audit trail: %+v, %v", entries, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}
