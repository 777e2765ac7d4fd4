package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/kafka"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

// readTopic collects the event ids published to eventType's topic.
func readTopic(t *testing.T, cluster *kfake.Cluster, eventType string) func() []string {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(kafka.TopicFor("", eventType)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ids []string
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); client.Close() })
	wg.Go(func() {
		for ctx.Err() == nil {
			client.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var ev tenantry.Event
				if json.Unmarshal(r.Value, &ev) == nil {
					mu.Lock()
					ids = append(ids, ev.EventID)
					mu.Unlock()
				}
			})
		}
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ids)
	}
}

// Against a real Kafka protocol peer: committed events published by a relay
// that died before publishing reach Kafka once the next relay runs, in the
// tenant's order, and a rolled-back change never reaches it.
func TestCommittedEventsReachKafkaAfterARelayCrash(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		tn := b.tenant(t, "T")
		ctx := context.Background()

		// A rolled-back change.
		lease, err := b.dbs.Acquire(ctx, tenantdb.Ref{Name: tn.DatabaseName})
		if err != nil {
			t.Fatal(err)
		}
		rolledBack := errors.New("rolled back")
		if err := b.streams.TenantTx(ctx, tn.ID, tn.DatabaseName, lease.DB(), func(tx sqldb.Tx) error {
			if err := outbox.Emit(ctx, tx, tenantry.EventDocumentUploaded, tn.ID, "", nil); err != nil {
				return err
			}
			return rolledBack
		}); !errors.Is(err, rolledBack) {
			t.Fatal(err)
		}
		lease.Release()
		want := b.emitTenant(t, tn, tenantry.EventDocumentUploaded, 12)

		// The first relay's broker is gone: it publishes nothing, marks
		// nothing published, and the process is then as good as dead.
		down, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		deadPublisher, err := kafka.NewPublisher(kafka.Config{Brokers: down.ListenAddrs()})
		if err != nil {
			t.Fatal(err)
		}
		down.Close()
		failing := outbox.NewRelay(b.control, b.dbs, deadPublisher, nil, outbox.RelayConfig{
			Owner: "doomed", Lease: time.Minute, PublishTimeout: time.Second, RetryDelay: 200 * time.Millisecond})
		if _, err := failing.Pass(ctx); err == nil {
			t.Fatal("publishing to a dead broker succeeded")
		}
		deadPublisher.Close()

		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cluster.Close)
		publisher, err := kafka.NewPublisher(kafka.Config{Brokers: cluster.ListenAddrs()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(publisher.Close)
		read := readTopic(t, cluster, tenantry.EventDocumentUploaded)
		time.Sleep(250 * time.Millisecond) // the failed stream's retry delay
		drain(t, newRelay(b, publisher, nil))

		deadline := time.Now().Add(15 * time.Second)
		for len(read()) < len(want) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // anything extra would show now
		if got := read(); !slices.Equal(got, want) {
			t.Fatalf("Kafka got %v\nwant %v", got, want)
		}
	})
}
