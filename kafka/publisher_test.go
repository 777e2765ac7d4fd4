package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/kafka"
)

// Ensure an event comes out of the Consumer as it went into the Publisher,
// in a record keyed by its tenant (or user) and carrying its headers.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	cluster := newCluster(t)
	cfg := testConfig(t, cluster)
	cfg.TopicPrefix = "test."
	pub := newPublisher(t, cfg)

	tenantID, userID := uuid.NewString(), uuid.NewString()
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	events := []tenantry.Event{{
		EventID:   uuid.NewString(),
		EventType: tenantry.EventDocumentUploaded,
		Version:   tenantry.EventVersion,
		TenantID:  tenantID,
		UserID:    userID,
		Timestamp: at,
		Data:      json.RawMessage(`{"document_id":"d1","filename":"Ä b.pdf","size":1024}`),
	}, {
		EventID:   uuid.NewString(),
		EventType: tenantry.EventTenantCreated,
		Version:   tenantry.EventVersion,
		TenantID:  tenantID,
		Timestamp: at.Add(time.Second),
		Data:      json.RawMessage(`{"name":"Acme"}`),
	}, {
		EventID:   uuid.NewString(),
		EventType: tenantry.EventUserRegistered,
		Version:   tenantry.EventVersion,
		UserID:    userID,
		Timestamp: at.Add(2 * time.Second),
		Data:      json.RawMessage(`{"email":"a@example.com"}`),
	}}
	wantKey := []string{tenantID, tenantID, userID}
	types := []string{tenantry.EventDocumentUploaded, tenantry.EventTenantCreated, tenantry.EventUserRegistered}

	publish(t, pub, events)

	var got sink
	startConsumer(t, cfg, types, got.handle)
	waitUntil(t, "all events are consumed", func() bool { return got.len() >= len(events) })
	byID := make(map[string]tenantry.Event)
	for _, ev := range got.all() {
		byID[ev.EventID] = ev
	}
	if n := got.len(); n != len(events) {
		t.Errorf("consumed %d events, want %d", n, len(events))
	}
	for _, want := range events {
		if ev := byID[want.EventID]; !reflect.DeepEqual(ev, want) {
			t.Errorf("consumed %+v, want %+v", ev, want)
		}
	}

	// The records themselves, as any Kafka client sees them.
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics("test."+types[0], "test."+types[1], "test."+types[2]),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	records := make(map[string]*kgo.Record)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	for len(records) < len(events) {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading records: %v", err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			records[string(r.Key)+" "+r.Topic] = r
		})
	}
	for i, ev := range events {
		r := records[wantKey[i]+" "+"test."+ev.EventType]
		if r == nil {
			t.Errorf("no record with key %s in topic test.%s", wantKey[i], ev.EventType)
			continue
		}
		headers := make(map[string]string)
		for _, h := range r.Headers {
			headers[h.Key] = string(h.Value)
		}
		wantHeaders := map[string]string{
			"event_type": ev.EventType,
			"event_id":   ev.EventID,
			"version":    strconv.Itoa(tenantry.EventVersion),
		}
		if !reflect.DeepEqual(headers, wantHeaders) {
			t.Errorf("record of %s has headers %v, want %v", ev.EventType, headers, wantHeaders)
		}
		var decoded tenantry.Event
		if err := json.Unmarshal(r.Value, &decoded); err != nil || !reflect.DeepEqual(decoded, ev) {
			t.Errorf("record of %s has value %s (%v), want the event's JSON", ev.EventType, r.Value, err)
		}
	}
}

// Ensure events without any tenant or user are still keyed, by their id.
func TestPublishKeysByEventID(t *testing.T) {
	t.Parallel()
	cluster := newCluster(t)
	cfg := testConfig(t, cluster)
	pub := newPublisher(t, cfg)
	ev := newEvent(tenantry.EventAuditLog, "", 0)
	ev.UserID = ""
	publish(t, pub, []tenantry.Event{ev})

	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(tenantry.EventAuditLog))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	fetches := cl.PollFetches(ctx)
	if err := ctx.Err(); err != nil {
		t.Fatalf("reading records: %v", err)
	}
	recs := fetches.Records()
	if len(recs) != 1 || string(recs[0].Key) != ev.EventID {
		t.Fatalf("records %v, want one keyed %s", recs, ev.EventID)
	}
}

// Ensure a batch with an event that cannot be published is refused whole.
func TestPublishRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	cluster := newCluster(t)
	pub := newPublisher(t, testConfig(t, cluster))
	good := newEvent(tenantry.EventTenantUpdated, uuid.NewString(), 0)
	noType := newEvent("", uuid.NewString(), 1)
	noID := newEvent(tenantry.EventTenantUpdated, uuid.NewString(), 2)
	noID.EventID = ""
	badData := newEvent(tenantry.EventTenantUpdated, uuid.NewString(), 3)
	badData.Data = json.RawMessage(`{not json`)
	for _, bad := range []tenantry.Event{noType, noID, badData} {
		if err := pub.Publish(t.Context(), []tenantry.Event{good, bad}); err == nil {
			t.Errorf("Publish of %+v: no error", bad)
		}
	}
	if err := pub.Publish(t.Context(), nil); err != nil {
		t.Errorf("Publish of no events: %v", err)
	}
}

// Ensure Publish gives up at once on a context that is already done.
func TestPublishCancelled(t *testing.T) {
	t.Parallel()
	cluster := newCluster(t)
	pub := newPublisher(t, testConfig(t, cluster))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := pub.Publish(ctx, []tenantry.Event{newEvent(tenantry.EventTenantCreated, uuid.NewString(), 0)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context = %v, want context.Canceled", err)
	}
}

// Ensure Publish and Ping fail, rather than hang, when no broker answers.
func TestPublishBrokerDown(t *testing.T) {
	t.Parallel()
	cluster := newCluster(t)
	cfg := testConfig(t, cluster)
	var failed failures
	cfg.Metrics = &failed
	pub := newPublisher(t, cfg)
	if err := pub.Ping(t.Context()); err != nil {
		t.Fatalf("Ping of a live cluster: %v", err)
	}
	publish(t, pub, []tenantry.Event{newEvent(tenantry.EventTenantCreated, uuid.NewString(), 0)})
	cluster.Close()

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- pub.Publish(ctx, []tenantry.Event{newEvent(tenantry.EventTenantCreated, uuid.NewString(), 1)})
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Publish to a closed cluster succeeded")
		}
		if n := failed.produced.Load(); n != 1 {
			t.Fatalf("%d records counted as not acknowledged, want the 1 sent to the closed cluster", n)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Publish to a closed cluster did not return after its context ended")
	}

	pingCtx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := pub.Ping(pingCtx); err == nil {
		t.Fatal("Ping of a closed cluster succeeded")
	}
}

// BenchmarkPublish measures events published per second to an in-process
// broker in batches of 100, each batch acknowledged before the next is sent,
// as the outbox relay sends them.
func BenchmarkPublish(b *testing.B) {
	cluster := newCluster(b)
	pub := newPublisher(b, kafka.Config{Brokers: cluster.ListenAddrs()})
	tenants := tenantIDs(20)
	batch := make([]tenantry.Event, 100)
	for i := range batch {
		batch[i] = newEvent(tenantry.EventDocumentUploaded, tenants[i%len(tenants)], i)
	}
	ctx := b.Context()
	// The first batch creates the topic; keep that out of the timing.
	if err := pub.Publish(ctx, batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	batches := 0
	for b.Loop() {
		if err := pub.Publish(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batches++
	}
	b.ReportMetric(float64(batches*len(batch))/b.Elapsed().Seconds(), "events/s")
}
