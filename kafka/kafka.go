// Package kafka carries tenantry's events over Apache Kafka: a Publisher that
// the outbox relay hands events to, and a Consumer that workers read them
// with. Each event type is a topic, each record's key is the event's tenant,
// and each record's value is the JSON of tenantry.Event, so events of one type
// for one tenant stay in order and a redelivered event keeps its event_id.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Config locates the cluster and names this process in it. The zero value of
// every field but Brokers is usable.
type Config struct {
	// Brokers are the seed brokers, host:port each, as in
	// KAFKA_BOOTSTRAP_SERVERS split on commas. Surrounding spaces and empty
	// entries are ignored.
	Brokers []string
	// ClientID names this process in broker logs and quotas; default
	// "tenantry".
	ClientID string
	// TopicPrefix is prepended, as is, to every event type to name its
	// topic; include the separator ("staging.") if one is wanted.
	TopicPrefix string
	// GroupID is the consumer group workers share; default
	// "tenantry-workers".
	GroupID string
	// Logger receives the clients' log lines at info level and above, and
	// the Consumer's reports of failed handlers; nil discards them.
	Logger *slog.Logger
	// Metrics, when set, counts what failed.
	Metrics Metrics
	// SASLMechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) with
	// SASLUser and SASLPassword authenticates to the brokers; empty
	// connects without.
	SASLMechanism, SASLUser, SASLPassword string
	// TLS dials the brokers over TLS, with the system's roots.
	TLS bool
}

// SASLMechanisms are the SASL mechanisms Config accepts.
var SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// saslMechanism returns the mechanism cfg names, nil for none.
func (cfg Config) saslMechanism() (sasl.Mechanism, error) {
	switch strings.ToUpper(cfg.SASLMechanism) {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Auth{User: cfg.SASLUser, Pass: cfg.SASLPassword}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: cfg.SASLUser, Pass: cfg.SASLPassword}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: cfg.SASLUser, Pass: cfg.SASLPassword}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka: SASL mechanism %q is not one of %s", cfg.SASLMechanism, strings.Join(SASLMechanisms, ", "))
}

// Metrics records the failures of publishing and consuming.
type Metrics interface {
	// ProduceFailed records event records the brokers did not
	// acknowledge.
	ProduceFailed(records int)
	// ConsumeFailed records a failed fetch, an undecodable record, a
	// failed handler or a failed offset commit.
	ConsumeFailed()
}

// noMetrics records nothing.
type noMetrics struct{}

func (noMetrics) ProduceFailed(int) {}
func (noMetrics) ConsumeFailed()    {}

// TopicFor returns the topic that events of eventType are published to.
func TopicFor(prefix, eventType string) string {
	return prefix + eventType
}

// withDefaults returns cfg with defaults filled in and its broker list
// cleaned, or an error when no broker is left to dial.
func (cfg Config) withDefaults() (Config, error) {
	var brokers []string
	for _, b := range cfg.Brokers {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		return cfg, errors.New("kafka: no brokers configured")
	}
	cfg.Brokers = brokers
	if _, err := cfg.saslMechanism(); err != nil {
		return cfg, err
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "tenantry"
	}
	if cfg.GroupID == "" {
		cfg.GroupID = "tenantry-workers"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	return cfg, nil
}

// clientOpts are the options every client of this package shares.
// withDefaults has checked the SASL mechanism.
func (cfg Config) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.WithLogger(kgoLogger{cfg.Logger}),
	}
	if mech, _ := cfg.saslMechanism(); mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	if cfg.TLS {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	return opts
}

// kgoLogger forwards franz-go's log lines to slog.
type kgoLogger struct{ l *slog.Logger }

// Level reports the most verbose level the slog handler accepts, capped at
// info: franz-go's debug level traces every request and would drown an
// application's own debug output.
func (k kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case k.l.Enabled(ctx, slog.LevelInfo):
		return kgo.LogLevelInfo
	case k.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case k.l.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

// Log implements kgo.Logger; franz-go's key-value pairs are slog's.
func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelInfo
	default:
		l = slog.LevelDebug
	}
	k.l.Log(context.Background(), l, "kafka: "+msg, keyvals...)
}
