package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/kafka"
)

// Ensure each tenant's events are consumed in the order they were published,
// however the tenants are interleaved and spread over partitions.
func TestConsumerKeepsTenantOrder(t *testing.T) {
	t.Parallel()
	cluster := newCluster(t)
	cfg := testConfig(t, cluster)
	pub := newPublisher(t, cfg)

	const total = 1000
	tenants := tenantIDs(20)
	next := make(map[string]int)
	var events []tenantry.Event
	for i := range total {
		tenant := tenants[(i*7+i/13)%len(tenants)] // interleaved, not round-robin
		events = append(events, newEvent(tenantry.EventDocumentUploaded, tenant, next[tenant]))
		next[tenant]++
	}
	// Consume while publishing, as workers do.
	var got sink
	startConsumer(t, cfg, []string{tenantry.EventDocumentUploaded}, got.handle)
	for batch := range slices.Chunk(events, 100) {
		publish(t, pub, batch)
	}
	waitUntil(t, "all events are consumed", func() bool { return got.len() >= total })

	seen := make(map[string][]int)
	for _, ev := range got.all() {
		seen[ev.TenantID] = append(seen[ev.TenantID], seqOf(ev))
	}
	for _, tenant := range tenants {
		want := make([]int, next[tenant])
		for i := range want {
			want[i] = i
		}
		if !slices.Equal(seen[tenant], want) {
			t.Errorf("tenant %s: consumed sequence %v, want %v", tenant, seen[tenant], want)
		}
	}
	if n := got.len(); n != total {
		t.Errorf("consumed %d events, want %d", n, total)
	}
}

// Ensure a consumer started before its topic exists gets the topic's events
// once it is created.
func TestConsumerWaitsForTopic(t *testing.T) {
	t.Parallel()
	const topic = tenantry.EventMemberAdded
	cluster := newCluster(t)
	looked := make(chan struct{})
	cluster.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		for _, rt := range req.(*kmsg.MetadataRequest).Topics {
			if rt.Topic != nil && *rt.Topic == topic {
				close(looked)
				cluster.DropControl()
				break
			}
		}
		return nil, nil, false // observe only
	})
	cfg := testConfig(t, cluster)
	var got sink
	startConsumer(t, cfg, []string{topic}, got.handle)
	select {
	case <-looked:
	case <-time.After(waitTimeout):
		t.Fatal("the consumer never looked its topic up")
	}
	if topicExists(t, cluster, topic) {
		t.Fatal("the consumer created its topic")
	}

	pub := newPublisher(t, cfg)
	ev := newEvent(topic, uuid.NewString(), 0)
	publish(t, pub, []tenantry.Event{ev})
	waitUntil(t, "the event is consumed", func() bool { return got.len() > 0 })
	if all := got.all(); len(all) != 1 || all[0].EventID != ev.EventID {
		t.Fatalf("consumed %v, want only %s", all, ev.EventID)
	}
}

// Ensure an event whose handler fails is handled again, and that nothing
// after it in its partition is handled or committed before it succeeds.
func TestConsumerRetriesFailedEvent(t *testing.T) {
	t.Parallel()
	const topic = tenantry.EventDocumentUpdated
	cluster := newCluster(t, kfake.SeedTopics(1, topic))
	cfg := testConfig(t, cluster)
	pub := newPublisher(t, cfg)

	tenant := uuid.NewString()
	var events []tenantry.Event
	for i := range 10 {
		events = append(events, newEvent(topic, tenant, i))
	}
	publish(t, pub, events)

	const failing = 3
	var (
		mu            sync.Mutex
		calls         []int
		failed        bool
		committedThen int64 = -2
		committedErr  error
	)
	startConsumer(t, cfg, []string{topic}, func(ctx context.Context, ev tenantry.Event) error {
		seq := seqOf(ev)
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, seq)
		if seq != failing {
			return nil
		}
		if !failed {
			failed = true
			return errors.New("transient failure")
		}
		committedThen, committedErr = fetchCommitted(ctx, cluster, cfg.GroupID, topic, 0)
		return nil
	})
	waitUntil(t, "every event is handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) >= len(events)+1
	})
	waitUntil(t, "every event is committed", func() bool {
		return committedOffset(t, cluster, cfg.GroupID, topic, 0) == int64(len(events))
	})

	mu.Lock()
	defer mu.Unlock()
	want := []int{0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9}
	if !slices.Equal(calls, want) {
		t.Errorf("handler calls %v, want %v", calls, want)
	}
	// Offsets equal sequence numbers in this one-partition topic.
	if committedErr != nil {
		t.Errorf("fetching the committed offset when the failed event was retried: %v", committedErr)
	} else if committedThen != failing {
		t.Errorf("committed offset when the failed event was retried = %d, want %d", committedThen, failing)
	}
}

// Ensure an event that keeps failing holds back only its own partition:
// events in other partitions are handled, later ones in its partition are not.
func TestConsumerFailureHoldsOnlyItsPartition(t *testing.T) {
	t.Parallel()
	const topic = tenantry.EventMemberRoleChanged
	cluster := newCluster(t, kfake.SeedTopics(4, topic))
	cfg := testConfig(t, cluster)
	cfg.Logger = nil       // the retries are logged as warnings, which is expected here
	cfg.MaxAttempts = 1000 // the event must stay, not go to the dead letter topic
	pub := newPublisher(t, cfg)

	tenants := tenantIDs(20)
	var events []tenantry.Event
	for i := range 200 {
		events = append(events, newEvent(topic, tenants[i%len(tenants)], i))
	}
	publish(t, pub, events)
	poison := events[0]

	// Which partition each event went to, as a plain client reads them.
	partitionOf := make(map[string]int32)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	for len(partitionOf) < len(events) {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading records: %v", err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "event_id" {
					partitionOf[string(h.Value)] = r.Partition
				}
			}
		})
	}
	held := partitionOf[poison.EventID]
	var others int
	for _, ev := range events {
		if partitionOf[ev.EventID] != held {
			others++
		}
	}

	var got sink
	var mu sync.Mutex
	attempts := 0
	startConsumer(t, cfg, []string{topic}, func(ctx context.Context, ev tenantry.Event) error {
		if ev.EventID == poison.EventID {
			mu.Lock()
			defer mu.Unlock()
			attempts++
			return errors.New("permanent failure")
		}
		return got.handle(ctx, ev)
	})
	waitUntil(t, "the other partitions are consumed and the poison event retried", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got.len() >= others && attempts >= 2
	})
	for _, ev := range got.all() {
		if partitionOf[ev.EventID] == held {
			t.Errorf("event %d, behind the failing event in partition %d, was handled", seqOf(ev), held)
		}
	}
	if n := got.len(); n != others {
		t.Errorf("handled %d events, want %d", n, others)
	}
}

// Ensure two consumers of one group share the partitions and, when nothing
// fails, together handle every event exactly once.
func TestConsumerGroupSharesPartitions(t *testing.T) {
	t.Parallel()
	types := []string{tenantry.EventDocumentUploaded, tenantry.EventDocumentDeleted}
	cluster := newCluster(t, kfake.SeedTopics(4, types...))
	cfg := testConfig(t, cluster)
	pub := newPublisher(t, cfg)

	var a, b sink
	startConsumer(t, cfg, types, a.handle)
	startConsumer(t, cfg, types, b.handle)
	waitUntil(t, "both consumers hold partitions", func() bool {
		counts := groupAssignments(t, cluster, cfg.GroupID)
		return len(counts) == 2 && counts[0] > 0 && counts[1] > 0 && counts[0]+counts[1] == 8
	})

	const total = 400
	tenants := tenantIDs(20)
	var events []tenantry.Event
	for i := range total {
		events = append(events, newEvent(types[i%2], tenants[i%len(tenants)], i))
	}
	for batch := range slices.Chunk(events, 100) {
		publish(t, pub, batch)
	}
	waitUntil(t, "all events are consumed", func() bool { return a.len()+b.len() >= total })

	count := make(map[string]int)
	for _, ev := range append(a.all(), b.all()...) {
		count[ev.EventID]++
	}
	for _, ev := range events {
		if n := count[ev.EventID]; n != 1 {
			t.Errorf("event %s consumed %d times, want once", ev.EventID, n)
		}
	}
	if n := a.len() + b.len(); n != total {
		t.Errorf("consumed %d events, want %d", n, total)
	}
	if a.len() == 0 || b.len() == 0 {
		t.Errorf("consumers handled %d and %d events, want both some", a.len(), b.len())
	}
}

// Ensure a rebalance while a consumer is handling a batch neither loses nor
// repeats events: the consumer commits what it handled, hands over its
// partitions and rewinds those it keeps to the first unhandled record.
func TestConsumerRebalanceMidBatch(t *testing.T) {
	t.Parallel()
	types := []string{tenantry.EventDocumentUploaded, tenantry.EventDocumentDeleted}
	cluster := newCluster(t, kfake.SeedTopics(4, types...))
	cfg := testConfig(t, cluster)
	pub := newPublisher(t, cfg)

	const total = 1000
	tenants := tenantIDs(20)
	var events []tenantry.Event
	for i := range total {
		events = append(events, newEvent(types[i%2], tenants[i%len(tenants)], i))
	}
	for batch := range slices.Chunk(events[:total/2], 100) {
		publish(t, pub, batch)
	}

	// A stops in the middle of its first batch until B has joined, so the
	// rebalance comes while A holds records it has not handled.
	var a, b sink
	startConsumer(t, cfg, types, func(ctx context.Context, ev tenantry.Event) error {
		if a.len() == 30 {
			for {
				if n, err := groupMembers(ctx, cluster, cfg.GroupID); err != nil || n == 2 {
					break
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		time.Sleep(time.Millisecond) // leave the rebalance time to reach A mid-batch
		return a.handle(ctx, ev)
	})
	waitUntil(t, "the first consumer is handling events", func() bool { return a.len() >= 30 })
	startConsumer(t, cfg, types, b.handle)

	// The rest is published once B holds partitions, so that B gets some.
	waitUntil(t, "both consumers hold partitions", func() bool {
		counts := groupAssignments(t, cluster, cfg.GroupID)
		return len(counts) == 2 && counts[0] > 0 && counts[1] > 0 && counts[0]+counts[1] == 8
	})
	for batch := range slices.Chunk(events[total/2:], 100) {
		publish(t, pub, batch)
	}
	waitUntil(t, "all events are consumed", func() bool { return a.len()+b.len() >= total })

	count := make(map[string]int)
	for _, ev := range append(a.all(), b.all()...) {
		count[ev.EventID]++
	}
	for _, ev := range events {
		if n := count[ev.EventID]; n != 1 {
			t.Errorf("event %s consumed %d times, want once", ev.EventID, n)
		}
	}
	if b.len() == 0 {
		t.Errorf("the second consumer handled no events")
	}
}

// Ensure a consumer of a group picks up where a stopped one left off:
// nothing is lost and nothing committed is handled again.
func TestConsumerResumesAfterCommitted(t *testing.T) {
	t.Parallel()
	const topic = tenantry.EventFileProcess
	cluster := newCluster(t, kfake.SeedTopics(1, topic))
	cfg := testConfig(t, cluster)
	pub := newPublisher(t, cfg)

	tenant := uuid.NewString()
	var events []tenantry.Event
	for i := range 100 {
		events = append(events, newEvent(topic, tenant, i))
	}
	publish(t, pub, events)

	const handledFirst = 40
	var first sink
	// The handler stops Run itself, so that exactly which events were
	// handled is known when Run returns.
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	c, err := kafka.NewConsumer(cfg, []string{topic}, func(ctx context.Context, ev tenantry.Event) error {
		if err := first.handle(ctx, ev); err != nil {
			return err
		}
		if first.len() == handledFirst {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	if err := c.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c.Close()
	if n := first.len(); n != handledFirst {
		t.Fatalf("first consumer handled %d events, want %d", n, handledFirst)
	}
	if off := committedOffset(t, cluster, cfg.GroupID, topic, 0); off != handledFirst {
		t.Fatalf("committed offset after the first consumer = %d, want %d", off, handledFirst)
	}

	var second sink
	startConsumer(t, cfg, []string{topic}, second.handle)
	waitUntil(t, "the rest is consumed", func() bool { return second.len() >= len(events)-handledFirst })
	var seqs []int
	for _, ev := range second.all() {
		seqs = append(seqs, seqOf(ev))
	}
	want := make([]int, 0, len(events)-handledFirst)
	for i := handledFirst; i < len(events); i++ {
		want = append(want, i)
	}
	if !slices.Equal(seqs, want) {
		t.Errorf("second consumer handled %v, want %v", seqs, want)
	}
}

// Ensure a record that is not an event goes to the dead letter topic at
// once rather than being retried, and does not hold back the events after it.
func TestConsumerDeadLettersMalformedRecords(t *testing.T) {
	t.Parallel()
	const topic = tenantry.EventFileDeleted
	cluster := newCluster(t, kfake.SeedTopics(1, topic))
	cfg := testConfig(t, cluster)
	cfg.Logger = nil // the dead letters are logged at error level, which is expected here
	var failed failures
	cfg.Metrics = &failed

	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	malformed := []string{"not json", "{}", "null"}
	for _, value := range malformed {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	pub := newPublisher(t, cfg)
	ev := newEvent(topic, uuid.NewString(), 0)
	publish(t, pub, []tenantry.Event{ev})

	var got sink
	startConsumer(t, cfg, []string{topic}, got.handle)
	waitUntil(t, "the event is consumed and committed", func() bool {
		return got.len() > 0 && committedOffset(t, cluster, cfg.GroupID, topic, 0) == 4
	})
	if all := got.all(); len(all) != 1 || all[0].EventID != ev.EventID {
		t.Fatalf("consumed %v, want only %s", all, ev.EventID)
	}
	dead := readTopic(t, cfg, kafka.DeadLetterTopic(topic), len(malformed))
	for i, r := range dead {
		if string(r.Value) != malformed[i] {
			t.Errorf("dead letter %d holds %q, want %q", i, r.Value, malformed[i])
		}
		h := headers(r)
		if h[kafka.HeaderDLQAttempts] != "1" || h[kafka.HeaderDLQOriginalOffset] != strconv.Itoa(i) ||
			!strings.HasPrefix(h[kafka.HeaderDLQError], "not an event") {
			t.Errorf("dead letter %d headers %v", i, h)
		}
	}
	if n := failed.consumed.Load(); n != 3 {
		t.Errorf("%d consume failures counted, want one per malformed record, 3", n)
	}
	if n := failed.deadLettered.Load(); n != 3 {
		t.Errorf("%d dead letters counted, want 3", n)
	}
}

// Ensure an event that keeps failing is written, after MaxAttempts tries,
// to the dead letter topic with headers saying why; that the events after
// it are then handled; and that a consumer started afterwards in the group
// neither handles it again nor misses anything.
func TestConsumerDeadLettersPoisonEvent(t *testing.T) {
	t.Parallel()
	const topic = tenantry.EventDocumentDeleted
	cluster := newCluster(t, kfake.SeedTopics(1, topic))
	cfg := testConfig(t, cluster)
	cfg.Logger = nil // the failures are logged, which is expected here
	cfg.MaxAttempts = 3
	var failed failures
	cfg.Metrics = &failed
	pub := newPublisher(t, cfg)

	tenant := uuid.NewString()
	var events []tenantry.Event
	for i := range 5 {
		events = append(events, newEvent(topic, tenant, i))
	}
	publish(t, pub, events)
	poison := events[2]

	var got sink
	var attempts atomic.Int32
	started := time.Now()
	stop := startConsumer(t, cfg, []string{topic}, func(ctx context.Context, ev tenantry.Event) error {
		if ev.EventID == poison.EventID {
			attempts.Add(1)
			return errors.New("permanent failure")
		}
		return got.handle(ctx, ev)
	})
	waitUntil(t, "the events after the poison are handled and committed", func() bool {
		return got.len() >= len(events)-1 && committedOffset(t, cluster, cfg.GroupID, topic, 0) == int64(len(events))
	})
	stop()
	var seqs []int
	for _, ev := range got.all() {
		seqs = append(seqs, seqOf(ev))
	}
	if want := []int{0, 1, 3, 4}; !slices.Equal(seqs, want) {
		t.Errorf("handled %v, want %v", seqs, want)
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("the poison event was tried %d times, want 3", n)
	}

	dead := readTopic(t, cfg, kafka.DeadLetterTopic(topic), 1)[0]
	h := headers(dead)
	if got := h[kafka.HeaderEventID]; got != poison.EventID {
		t.Errorf("dead letter event_id = %q, want %q", got, poison.EventID)
	}
	if string(dead.Key) != tenant {
		t.Errorf("dead letter key = %q, want the tenant %q", dead.Key, tenant)
	}
	var ev tenantry.Event
	if err := json.Unmarshal(dead.Value, &ev); err != nil || ev.EventID != poison.EventID || seqOf(ev) != 2 {
		t.Errorf("dead letter value %s does not hold the poison event (%v)", dead.Value, err)
	}
	for name, want := range map[string]string{
		kafka.HeaderDLQError:             "permanent failure",
		kafka.HeaderDLQAttempts:          "3",
		kafka.HeaderDLQOriginalTopic:     topic,
		kafka.HeaderDLQOriginalPartition: "0",
		kafka.HeaderDLQOriginalOffset:    "2",
	} {
		if h[name] != want {
			t.Errorf("header %s = %q, want %q", name, h[name], want)
		}
	}
	first, ferr := time.Parse(time.RFC3339Nano, h[kafka.HeaderDLQFirstFailure])
	last, lerr := time.Parse(time.RFC3339Nano, h[kafka.HeaderDLQLastFailure])
	switch {
	case ferr != nil || lerr != nil:
		t.Errorf("failure times %q, %q: %v %v", h[kafka.HeaderDLQFirstFailure], h[kafka.HeaderDLQLastFailure], ferr, lerr)
	case first.Before(started.Add(-time.Second)) || !last.After(first) || last.After(time.Now()):
		// Two backoffs separate the first and the last failure.
		t.Errorf("first failure %v, last %v: not in order within the test", first, last)
	}
	if n := failed.deadLettered.Load(); n != 1 {
		t.Errorf("%d dead letters counted, want 1", n)
	}

	// A restarted worker starts after the poison and after everything
	// handled: only a new event reaches it.
	var after sink
	startConsumer(t, cfg, []string{topic}, after.handle)
	next := newEvent(topic, tenant, 5)
	publish(t, pub, []tenantry.Event{next})
	waitUntil(t, "the new event is handled", func() bool { return after.len() > 0 })
	waitUntil(t, "the new event is committed", func() bool {
		return committedOffset(t, cluster, cfg.GroupID, topic, 0) == int64(len(events)+1)
	})
	if all := after.all(); len(all) != 1 || all[0].EventID != next.EventID {
		t.Errorf("the restarted consumer handled %v, want only the new event", all)
	}
	if n := len(readTopic(t, cfg, kafka.DeadLetterTopic(topic), 1)); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

// Ensure that while the dead letter topic cannot be written, the event
// stays where it is: its partition holds, nothing after it is committed,
// and it goes to the dead letter topic once writing works again.
func TestConsumerHoldsEventUntilDeadLetterIsWritten(t *testing.T) {
	t.Parallel()
	const topic = tenantry.EventMemberRemoved
	cluster := newCluster(t, kfake.SeedTopics(1, topic))
	dlq := kafka.DeadLetterTopic(topic)
	// Recent produce requests name topics by id, not name: the test
	// refuses every produce request while refusing is set, which is after
	// the events were published, when only dead letters are written.
	var refusing atomic.Bool
	var refused atomic.Int32
	refuse := func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !refusing.Load() {
			return nil, nil, false
		}
		cluster.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		refused.Add(1)
		return resp, nil, true
	}
	cluster.ControlKey(int16(kmsg.Produce), refuse)
	cfg := testConfig(t, cluster)
	cfg.Logger = nil // the refusals are logged, which is expected here
	cfg.MaxAttempts = 1
	pub := newPublisher(t, cfg)
	tenant := uuid.NewString()
	events := []tenantry.Event{newEvent(topic, tenant, 0), newEvent(topic, tenant, 1)}
	publish(t, pub, events)
	refusing.Store(true)

	var got sink
	startConsumer(t, cfg, []string{topic}, func(ctx context.Context, ev tenantry.Event) error {
		if ev.EventID == events[0].EventID {
			return errors.New("permanent failure")
		}
		return got.handle(ctx, ev)
	})
	waitUntil(t, "a dead letter is refused twice", func() bool { return refused.Load() >= 2 })
	if n := got.len(); n != 0 {
		t.Fatalf("%d events after the held one were handled", n)
	}
	if off := committedOffset(t, cluster, cfg.GroupID, topic, 0); off > 0 {
		t.Fatalf("committed offset %d past the event whose dead letter was refused", off)
	}

	refusing.Store(false)
	waitUntil(t, "the next event is handled and committed", func() bool {
		return got.len() > 0 && committedOffset(t, cluster, cfg.GroupID, topic, 0) == 2
	})
	if dead := readTopic(t, cfg, dlq, 1); headers(dead[0])[kafka.HeaderEventID] != events[0].EventID {
		t.Errorf("dead letter headers %v", headers(dead[0]))
	}
}

// readTopic reads every record of topic's first partition, failing unless
// there are want of them.
func readTopic(t *testing.T, cfg kafka.Config, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	var records []*kgo.Record
	for len(records) < want {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records of %s, want %d", len(records), topic, want)
		}
		records = append(records, fetches.Records()...)
	}
	// Anything more would have come with the records already read or
	// shortly after them.
	extra, cancelExtra := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancelExtra()
	records = append(records, cl.PollFetches(extra).Records()...)
	if len(records) != want {
		t.Fatalf("%s holds %d records, want %d", topic, len(records), want)
	}
	return records
}

// headers returns r's headers by name.
func headers(r *kgo.Record) map[string]string {
	h := make(map[string]string)
	for _, kv := range r.Headers {
		h[kv.Key] = string(kv.Value)
	}
	return h
}

// Ensure a Run started after another returned picks up where it stopped,
// including a partition held back for a failed event.
func TestConsumerRunAgain(t *testing.T) {
	t.Parallel()
	const topic = tenantry.EventSessionRevoked
	cluster := newCluster(t, kfake.SeedTopics(1, topic))
	cfg := testConfig(t, cluster)
	cfg.Logger = nil // the failure is logged as a warning, which is expected here
	pub := newPublisher(t, cfg)
	tenant := uuid.NewString()
	var events []tenantry.Event
	for i := range 5 {
		events = append(events, newEvent(topic, tenant, i))
	}
	publish(t, pub, events)

	var got sink
	var firstRun, failures atomic.Int32
	firstRun.Store(1)
	c, err := kafka.NewConsumer(cfg, []string{topic}, func(ctx context.Context, ev tenantry.Event) error {
		if seqOf(ev) == 2 && firstRun.Load() == 1 {
			failures.Add(1)
			return errors.New("transient failure")
		}
		return got.handle(ctx, ev)
	})
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer c.Close()

	run := func(stopWhen func() bool) {
		t.Helper()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		waitUntil(t, "the Run has done its part", stopWhen)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	// The first Run stops while the partition waits for a retry.
	run(func() bool { return failures.Load() > 0 })
	firstRun.Store(0)
	run(func() bool { return got.len() >= len(events) })

	var seqs []int
	for _, ev := range got.all() {
		seqs = append(seqs, seqOf(ev))
	}
	if want := []int{0, 1, 2, 3, 4}; !slices.Equal(seqs, want) {
		t.Errorf("handled %v, want %v", seqs, want)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{7, 6400 * time.Millisecond},
		{8, 10 * time.Second},
		{1000, 10 * time.Second},
	}
	for _, tt := range tests {
		if got := kafka.Backoff(tt.failures); got != tt.want {
			t.Errorf("Backoff(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}
