package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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

// waitTimeout is how long a test waits for something that takes
// milliseconds when all is well; it only bounds how long a broken test hangs.
const waitTimeout = 20 * time.Second

func TestTopicFor(t *testing.T) {
	t.Parallel()
	tests := []struct{ prefix, eventType, want string }{
		{"", tenantry.EventDocumentUploaded, "document.uploaded"},
		{"staging.", tenantry.EventTenantCreated, "staging.tenant.created"},
		{"acme-", tenantry.EventUserPasswordChange, "acme-user.password_changed"},
	}
	for _, tt := range tests {
		if got := kafka.TopicFor(tt.prefix, tt.eventType); got != tt.want {
			t.Errorf("TopicFor(%q, %q) = %q, want %q", tt.prefix, tt.eventType, got, tt.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	nop := func(context.Context, tenantry.Event) error { return nil }
	for _, brokers := range [][]string{nil, {}, {"", "  "}} {
		if _, err := kafka.NewPublisher(kafka.Config{Brokers: brokers}); err == nil {
			t.Errorf("NewPublisher with brokers %q: no error", brokers)
		}
		if _, err := kafka.NewConsumer(kafka.Config{Brokers: brokers}, []string{"a"}, nop); err == nil {
			t.Errorf("NewConsumer with brokers %q: no error", brokers)
		}
	}
	cfg := kafka.Config{Brokers: []string{"127.0.0.1:1"}}
	if _, err := kafka.NewConsumer(cfg, nil, nop); err == nil {
		t.Error("NewConsumer without event types: no error")
	}
	if _, err := kafka.NewConsumer(cfg, []string{""}, nop); err == nil {
		t.Error("NewConsumer with an empty event type: no error")
	}
	if _, err := kafka.NewConsumer(cfg, []string{"a"}, nil); err == nil {
		t.Error("NewConsumer without a handler: no error")
	}
}

// newCluster starts an in-process single-broker cluster that creates topics
// on first use, with 10 partitions unless opts say otherwise.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// testConfig returns a Config for cluster with a group of the test's own.
func testConfig(t testing.TB, cluster *kfake.Cluster) kafka.Config {
	return kafka.Config{
		Brokers: cluster.ListenAddrs(),
		GroupID: "workers-" + uuid.NewString(),
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func newPublisher(t testing.TB, cfg kafka.Config) *kafka.Publisher {
	t.Helper()
	p, err := kafka.NewPublisher(cfg)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// startConsumer runs a Consumer until the returned stop is called or the test
// ends.
func startConsumer(t *testing.T, cfg kafka.Config, eventTypes []string, handle func(context.Context, tenantry.Event) error) (stop func()) {
	t.Helper()
	c, err := kafka.NewConsumer(cfg, eventTypes, handle)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			c.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// sink records the events handed to it.
type sink struct {
	mu     sync.Mutex
	events []tenantry.Event
}

func (s *sink) handle(_ context.Context, ev tenantry.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
	return nil
}

func (s *sink) all() []tenantry.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tenantry.Event(nil), s.events...)
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// waitUntil polls cond until it holds, failing the test after waitTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// seqData is the payload of test events: a sequence number per tenant.
type seqData struct {
	Seq int `json:"seq"`
}

func newEvent(eventType, tenantID string, seq int) tenantry.Event {
	data, _ := json.Marshal(seqData{Seq: seq})
	return tenantry.Event{
		EventID:   uuid.NewString(),
		EventType: eventType,
		Version:   tenantry.EventVersion,
		TenantID:  tenantID,
		UserID:    uuid.NewString(),
		Timestamp: time.Now().UTC().Truncate(time.Microsecond),
		Data:      data,
	}
}

// seqOf returns the sequence number in ev's data, or -1 if it has none.
func seqOf(ev tenantry.Event) int {
	d := seqData{Seq: -1}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return -1
	}
	return d.Seq
}

func publish(t *testing.T, p *kafka.Publisher, events []tenantry.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if err := p.Publish(ctx, events); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// committedOffset returns the offset group has committed for one partition,
// or -1 if none.
func committedOffset(t *testing.T, cluster *kfake.Cluster, group, topic string, partition int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	off, err := fetchCommitted(ctx, cluster, group, topic, partition)
	if err != nil {
		t.Fatalf("fetching committed offsets: %v", err)
	}
	return off
}

// fetchCommitted is committedOffset for goroutines other than the test's.
func fetchCommitted(ctx context.Context, cluster *kfake.Cluster, group, topic string, partition int32) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()

	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = []int32{partition}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, err
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic == topic && rp.Partition == partition {
				return rp.Offset, kerr.ErrorForCode(rp.ErrorCode)
			}
		}
	}
	return -1, nil
}

// groupMembers returns how many members group has, in any state; it may be
// called from any goroutine.
func groupMembers(ctx context.Context, cluster *kfake.Cluster, group string) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	if len(resp.Groups) != 1 {
		return 0, nil
	}
	return len(resp.Groups[0].Members), kerr.ErrorForCode(resp.Groups[0].ErrorCode)
}

// groupAssignments returns how many partitions each member of group holds,
// or nil while the group is not stable.
func groupAssignments(t *testing.T, cluster *kfake.Cluster, group string) []int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()

	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("describing group: %v", err)
	}
	if len(resp.Groups) != 1 || resp.Groups[0].State != "Stable" {
		return nil
	}
	var counts []int
	for _, m := range resp.Groups[0].Members {
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(m.MemberAssignment); err != nil {
			t.Fatalf("decoding assignment: %v", err)
		}
		n := 0
		for _, topic := range a.Topics {
			n += len(topic.Partitions)
		}
		counts = append(counts, n)
	}
	return counts
}

// topicExists reports whether the cluster has topic, without creating it.
func topicExists(t *testing.T, cluster *kfake.Cluster, topic string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()

	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("looking up %s: %v", topic, err)
	}
	return len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0
}

func tenantIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		// Fixed ids keep the spread over partitions the same on every run.
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	return ids
}

// failures counts what a Publisher or Consumer reports as failed.
type failures struct {
	produced, consumed, deadLettered atomic.Int64
}

func (f *failures) ProduceFailed(records int) { f.produced.Add(int64(records)) }
func (f *failures) ConsumeFailed()            { f.consumed.Add(1) }
func (f *failures) DeadLettered()             { f.deadLettered.Add(1) }
