package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tenantry/tenantry"
)

// Record header names. They repeat envelope fields so that routers, filters
// and tools can act on a record without decoding its value.
const (
	HeaderEventType = "event_type"
	HeaderEventID   = "event_id"
	HeaderVersion   = "version"
)

// Publisher sends events to their topics with an idempotent producer that
// waits for every in-sync replica: a retried request cannot duplicate or
// reorder records within a partition, so one tenant's events of one type are
// read in the order they were published.
//
// Events of different types go to different topics, and Kafka orders records
// only within a partition of one topic: a consumer of several types may see
// a tenant's events of different types in any order.
type Publisher struct {
	client  *kgo.Client
	prefix  string
	metrics Metrics
}

// NewPublisher returns a Publisher for cfg's cluster. It does not dial: an
// unreachable cluster shows up in Ping and Publish, so a process can start
// before its brokers do.
func NewPublisher(cfg Config) (*Publisher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opts := append(cfg.clientOpts(),
		// Topics are event types; a new type must not need an operator
		// before its first event can leave the outbox.
		kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Hash keys with murmur2, as the Java client does, so that a
		// tenant's partition does not depend on which client published.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		// Publish waits for its records anyway; lingering (10ms by
		// default) would only add latency to every batch the relay sends.
		kgo.ProducerLinger(0),
	)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: creating producer: %w", err)
	}
	return &Publisher{client: client, prefix: cfg.TopicPrefix, metrics: cfg.Metrics}, nil
}

// Publish sends events and returns nil only when the brokers have
// acknowledged every one of them. Otherwise it returns an error saying how
// many were not acknowledged, and the caller should retry the whole batch
// later: events that did get through are then published twice, with the same
// event_id, which consumers must tolerate anyway (delivery is at least once).
//
// Publish returns when ctx is done even if records are still in flight;
// those may yet be written. It sends nothing if an event cannot be encoded.
//
// Concurrent calls share produce batches, and franz-go cancels a batch by the
// context of its first record, so one caller's cancelled context can fail
// another's events: a relay gets the clearest results by calling Publish from
// one goroutine.
func (p *Publisher) Publish(ctx context.Context, events []tenantry.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka: publishing %d events: %w", len(events), err)
	}
	records := make([]*kgo.Record, len(events))
	for i, ev := range events {
		r, err := p.record(ev)
		if err != nil {
			return err
		}
		records[i] = r
	}

	// Buffered for every promise, so that promises of a call that has
	// already returned on ctx never block the client's promise goroutine.
	results := make(chan error, len(records))
	for _, r := range records {
		p.client.Produce(ctx, r, func(_ *kgo.Record, err error) { results <- err })
	}
	var failed int
	var firstErr error
	for pending := len(records); pending > 0; pending-- {
		select {
		case err := <-results:
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
			}
		case <-ctx.Done():
			p.metrics.ProduceFailed(failed + pending)
			return fmt.Errorf("kafka: %d of %d events not acknowledged: %w", failed+pending, len(records), ctx.Err())
		}
	}
	if failed > 0 {
		p.metrics.ProduceFailed(failed)
		return fmt.Errorf("kafka: %d of %d events not acknowledged: %w", failed, len(records), firstErr)
	}
	return nil
}

// record encodes ev as the record it is published as.
func (p *Publisher) record(ev tenantry.Event) (*kgo.Record, error) {
	if ev.EventType == "" || ev.EventID == "" {
		return nil, fmt.Errorf("kafka: event %q of type %q lacks an id or a type", ev.EventID, ev.EventType)
	}
	value, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("kafka: encoding event %s: %w", ev.EventID, err)
	}
	// The key picks the partition. A tenant's events share one, which
	// orders them; events outside any tenant are ordered per user when
	// they have one and need no order otherwise.
	key := ev.TenantID
	if key == "" {
		key = ev.UserID
	}
	if key == "" {
		key = ev.EventID
	}
	// The record timestamp is left to the client, so it is the time the
	// event entered Kafka: retention then counts from publication, and an
	// outbox backlog drained after an outage is not expired early. The
	// event's own time travels in the value.
	return &kgo.Record{
		Topic: TopicFor(p.prefix, ev.EventType),
		Key:   []byte(key),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderEventType, Value: []byte(ev.EventType)},
			{Key: HeaderEventID, Value: []byte(ev.EventID)},
			{Key: HeaderVersion, Value: []byte(strconv.Itoa(ev.Version))},
		},
	}, nil
}

// Ping reports whether a broker of the cluster answers, for readiness checks.
func (p *Publisher) Ping(ctx context.Context) error {
	if err := p.client.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: ping: %w", err)
	}
	return nil
}

// Close releases the Publisher's connections. Records still in flight from a
// Publish that returned early are abandoned; their events remain unpublished
// in the outbox and are sent again.
func (p *Publisher) Close() {
	p.client.Close()
}
