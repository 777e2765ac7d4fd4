package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/kafka"
)

// Ensure the clients authenticate with each mechanism the configuration
// offers, and that a broker requiring SASL refuses a wrong password.
func TestSASL(t *testing.T) {
	t.Parallel()
	for _, mech := range kafka.SASLMechanisms {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			cluster := newCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "tenantry", "right password"))
			cfg := testConfig(t, cluster)
			cfg.SASLMechanism, cfg.SASLUser, cfg.SASLPassword = mech, "tenantry", "right password"
			pub := newPublisher(t, cfg)
			publish(t, pub, []tenantry.Event{newEvent(tenantry.EventTenantCreated, uuid.NewString(), 0)})
			var got sink
			startConsumer(t, cfg, []string{tenantry.EventTenantCreated}, got.handle)
			waitUntil(t, "the event is consumed", func() bool { return got.len() == 1 })

			cfg.SASLPassword = "wrong password"
			wrong := newPublisher(t, cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			if err := wrong.Ping(ctx); err == nil {
				t.Fatal("a wrong password was accepted")
			}
		})
	}
	if _, err := kafka.NewPublisher(kafka.Config{Brokers: []string{"127.0.0.1:1"}, SASLMechanism: "GSSAPI"}); err == nil {
		t.Fatal("an unknown SASL mechanism was accepted")
	}
}
