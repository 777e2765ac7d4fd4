package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/kafka"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenantdb"
)

// localEngines keeps the production shape of an in-process app to
// PostgreSQL alone: no S3 bucket for blobs and no Redis for rate limits,
// whatever the test environment offers, so that the figures measure the
// event machinery rather than other servers on the same two cores.
func localEngines(b *testing.B) {
	b.Helper()
	b.Setenv("TENANTRY_TEST_S3_ENDPOINT", "")
	b.Setenv(apptest.RedisEnv, "")
}

// newCluster starts an in-process single-broker Kafka with the topic of
// document.uploaded events already created with 10 partitions, so that no
// figure includes a topic's creation.
func newCluster(b *testing.B) *kfake.Cluster {
	b.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(),
		kfake.SeedTopics(10, kafka.TopicFor("", tenantry.EventDocumentUploaded)))
	if err != nil {
		b.Fatalf("starting kfake: %v", err)
	}
	b.Cleanup(c.Close)
	return c
}

// Relay throughput: relayTenants tenants with relayEventsPerTenant
// unpublished events each.
const (
	relayTenants         = 20
	relayEventsPerTenant = 5_000
)

// countingSink passes events on and counts them.
type countingSink struct {
	next outbox.Sink
	n    atomic.Int64
}

func (s *countingSink) Publish(ctx context.Context, events []tenantry.Event) error {
	if err := s.next.Publish(ctx, events); err != nil {
		return err
	}
	s.n.Add(int64(len(events)))
	return nil
}

// BenchmarkRelayThroughput measures how fast one relay empties a backlog:
// 20 tenants with 5,000 unpublished document.uploaded events each, written
// to their outboxes and their streams marked pending beforehand, then one
// outbox.Relay, with the default batch of 500, passes over the pending
// streams until none is left. The sink is a kafka.Publisher to an
// in-process kfake broker (sink=kafka), or, for comparison, the in-process
// Dispatcher with one subscriber that does nothing (sink=in-process), which
// isolates the outbox's own cost: reading the batches, and marking each
// event published with its stream position.
//
// The app is built but not started, so that no relay of its own competes;
// the tenant database caps are the defaults a real server starts with. It
// is a one-shot measurement that ignores b.N: run it with -benchtime 1x.
func BenchmarkRelayThroughput(b *testing.B) {
	eachShape(b, func(b *testing.B, shape config.Shape) {
		for _, sinkName := range []string{"kafka", "in-process"} {
			b.Run("sink="+sinkName, func(b *testing.B) {
				localEngines(b)
				ctx := context.Background()
				cfg := apptest.Config(b, shape)
				cfg.TenantDBMaxConns, cfg.TenantDBConnsPerTenant = 0, 0
				cfg.WithDefaults()
				a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler), "bench")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = a.Close() })
				tenants := provisionMany(b, a.Provisioner, relayTenants)
				fillStart := time.Now()
				for _, tn := range tenants {
					fillOutbox(b, a, tn.ID, tn.DatabaseName, relayEventsPerTenant)
				}
				b.Logf("wrote %d events in %s", relayTenants*relayEventsPerTenant, time.Since(fillStart).Round(time.Millisecond))

				var next outbox.Sink
				if sinkName == "kafka" {
					pub, err := kafka.NewPublisher(kafka.Config{Brokers: newCluster(b).ListenAddrs()})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(pub.Close)
					// The producer's first request learns the
					// cluster's metadata; that is start-up, not
					// throughput.
					ev, _ := outbox.NewEvent(tenantry.EventDocumentUploaded, uuid.NewString(), "", map[string]string{"warm": "up"})
					if err := pub.Publish(ctx, []tenantry.Event{ev}); err != nil {
						b.Fatal(err)
					}
					next = pub
				} else {
					d := outbox.NewDispatcher()
					d.Subscribe(func(context.Context, tenantry.Event) error { return nil })
					next = d
				}
				sink := &countingSink{next: next}
				relay := outbox.NewRelay(a.Engines.Control, a.Tenants, sink, nil, outbox.RelayConfig{Owner: "bench"})

				b.ResetTimer()
				start := time.Now()
				for {
					busy, err := relay.Pass(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if !busy {
						break
					}
				}
				elapsed := time.Since(start)
				b.StopTimer()

				want := int64(relayTenants * relayEventsPerTenant)
				if got := sink.n.Load(); got != want {
					b.Fatalf("the relay published %d events, want %d", got, want)
				}
				for _, tn := range tenants {
					if n := unpublished(b, a, tn.DatabaseName); n != 0 {
						b.Fatalf("tenant %s still has %d unpublished events", tn.ID, n)
					}
				}
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(float64(want)/elapsed.Seconds(), "events/s")
				b.ReportMetric(elapsed.Seconds(), "s")
			})
		}
	})
}

// fillOutbox writes n document.uploaded events, with the payload an upload
// writes, into a tenant's outbox in one transaction, and marks its stream
// pending as a writer does.
func fillOutbox(b *testing.B, a *app.App, tenantID, databaseName string, n int) {
	b.Helper()
	ctx := context.Background()
	lease, err := a.Tenants.Acquire(ctx, tenantdb.Ref{Name: databaseName})
	if err != nil {
		b.Fatal(err)
	}
	defer lease.Release()
	userID := uuid.NewString()
	if err := outbox.Mark(ctx, a.Engines.Control, tenantID, databaseName); err != nil {
		b.Fatal(err)
	}
	err = lease.DB().InTx(ctx, func(tx sqldb.Tx) error {
		for i := range n {
			sha := fmt.Sprintf("%064x", i)
			if err := outbox.Emit(ctx, tx, tenantry.EventDocumentUploaded, tenantID, userID, map[string]any{
				"document_id": uuid.NewString(), "filename": fmt.Sprintf("Report %06d.pdf", i), "mime_type": "application/pdf",
				"file_id": uuid.NewString(), "file_size": 10240 + i, "sha256_hash": sha,
				"s3_path": "tenants/" + databaseName + "/files/" + sha[0:2] + "/" + sha[2:4] + "/" + sha, "deduplicated": false,
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("filling the outbox of %s: %v", databaseName, err)
	}
}

// unpublished counts a tenant's events that no relay has published.
func unpublished(b *testing.B, a *app.App, databaseName string) int64 {
	b.Helper()
	ctx := context.Background()
	lease, err := a.Tenants.Acquire(ctx, tenantdb.Ref{Name: databaseName})
	if err != nil {
		b.Fatal(err)
	}
	defer lease.Release()
	var n int64
	if err := lease.DB().QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// receipt is the arrival of a document.uploaded event at a consumer.
type receipt struct {
	documentID string
	at         time.Time
}

// eventWaitTimeout bounds the wait for one event; all is well when it takes
// milliseconds.
const eventWaitTimeout = 30 * time.Second

// stallAfter is how long the benchmark waits for an upload's event before
// it counts the event as stalled and goes on with the next upload: far
// beyond the milliseconds an event takes when all is well.
const stallAfter = time.Second

// latencyWarmups is how many uploads go through before the measured ones,
// so that connections, the consumer's first fetches and the relay's first
// statements are behind.
const latencyWarmups = 5

// BenchmarkEventLatency measures how long a document.uploaded event takes to
// reach a consumer after its upload: an in-process app (apptest.Start, which
// also relays and consumes, as a worker would) receives b.N small uploads
// one after another. Each upload's response is timestamped as soon as it
// has been read, which is after the commit, and the event's arrival is
// timestamped by the consumer; the difference is reported (ms/op, p50-ms,
// p99-ms), and is negative when the event arrived before the client had
// read the response. It is a lower bound of the time from commit to
// receipt; adding the upload's own duration (upload-p50-ms) gives an upper
// bound. The next upload starts once the event has arrived, or once it has
// been awaited for stallAfter: the event then counts as stalled, and its
// latency, counted when it does arrive, stays in the percentiles.
//
// transport=in-process subscribes to the app's Dispatcher, which the relay
// hands events to in the process; transport=kafka configures the app with
// an in-process kfake broker and consumes the document.uploaded topic with
// a franz-go client at its default settings. The relay is woken by each
// commit in this process, so TENANTRY_RELAY_POLL_INTERVAL, which paces
// relays in other processes, plays no part.
func BenchmarkEventLatency(b *testing.B) {
	eachShape(b, func(b *testing.B, shape config.Shape) {
		for _, transport := range []string{"in-process", "kafka"} {
			b.Run("transport="+transport, func(b *testing.B) {
				localEngines(b)
				cfg := apptest.Config(b, shape)
				receipts := make(chan receipt, b.N+latencyWarmups+16)
				record := func(data json.RawMessage) {
					at := time.Now()
					var d struct {
						DocumentID string `json:"document_id"`
					}
					if err := json.Unmarshal(data, &d); err == nil {
						select {
						case receipts <- receipt{documentID: d.DocumentID, at: at}:
						default: // redeliveries beyond the buffer are not needed
						}
					}
				}
				var cluster *kfake.Cluster
				if transport == "kafka" {
					cluster = newCluster(b)
					cfg.KafkaBrokers = cluster.ListenAddrs()
				}
				env := apptest.Start(b, cfg)
				if transport == "kafka" {
					consumeUploads(b, cluster, record)
				} else {
					env.App.Dispatcher.Subscribe(func(_ context.Context, ev tenantry.Event) error {
						record(ev.Data)
						return nil
					}, tenantry.EventDocumentUploaded)
				}

				u := env.SignUp(b, "Events")
				tenantID := env.CreateTenant(b, u, "Events")
				// answered holds the response time of each upload whose
				// event has not arrived yet; collect matches arrivals
				// against it, whatever order they come in, and keeps the
				// latencies of the measured uploads.
				type sent struct {
					at       time.Time
					measured bool
				}
				answered := map[string]sent{}
				latencies := make([]time.Duration, 0, b.N)
				collect := func(documentID string, patience time.Duration) bool {
					timeout := time.After(patience)
					for {
						if _, waiting := answered[documentID]; !waiting {
							return true
						}
						select {
						case r := <-receipts:
							if up, ok := answered[r.documentID]; ok {
								if up.measured {
									latencies = append(latencies, r.at.Sub(up.at))
								}
								delete(answered, r.documentID)
							}
						case <-timeout:
							return false
						}
					}
				}
				for i := range latencyWarmups {
					doc := env.Upload(b, u, tenantID, fmt.Sprintf("warm-up-%d.txt", i), []byte(uuid.NewString()))
					answered[doc.ID] = sent{at: time.Now()}
					collect(doc.ID, stallAfter)
				}

				uploads := make([]time.Duration, 0, b.N)
				stalled := 0
				b.ResetTimer()
				for i := range b.N {
					content := []byte(fmt.Sprintf("document %d %s", i, uuid.NewString()))
					start := time.Now()
					doc := env.Upload(b, u, tenantID, fmt.Sprintf("doc-%d.txt", i), content)
					at := time.Now()
					answered[doc.ID] = sent{at: at, measured: true}
					uploads = append(uploads, at.Sub(start))
					if !collect(doc.ID, stallAfter) {
						stalled++
					}
				}
				b.StopTimer()
				// A stalled event waits for the tenant's next write;
				// unmeasured uploads provide it.
				for deadline := time.Now().Add(eventWaitTimeout); len(answered) > 0; {
					if time.Now().After(deadline) {
						b.Fatalf("%d events did not arrive within %s", len(answered), eventWaitTimeout)
					}
					env.Upload(b, u, tenantID, "flush.txt", []byte(uuid.NewString()))
					for id := range answered {
						collect(id, stallAfter)
						break
					}
				}
				if stalled > 0 {
					b.Logf("%d of %d events had not arrived %s after their upload's response", stalled, b.N, stallAfter)
				}
				reportLatencies(b, latencies)
				b.ReportMetric(float64(stalled), "stalled")
				b.ReportMetric(float64(percentile(uploads, 50))/float64(time.Millisecond), "upload-p50-ms")
			})
		}
	})
}

// consumeUploads reads the document.uploaded topic from its start and
// calls record with each event's data, until the benchmark ends.
func consumeUploads(b *testing.B, cluster *kfake.Cluster, record func(json.RawMessage)) {
	b.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumeTopics(kafka.TopicFor("", tenantry.EventDocumentUploaded)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.Cleanup(func() { cancel(); <-done; client.Close() })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			client.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var ev tenantry.Event
				if err := json.Unmarshal(r.Value, &ev); err == nil {
					record(ev.Data)
				}
			})
		}
	}()
}
