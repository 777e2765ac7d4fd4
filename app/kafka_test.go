package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/kafka"
	"github.com/tenantry/tenantry/outbox"
)

// kafkaEvents reads every event published to the cluster, keyed by type.
type kafkaEvents struct {
	mu      sync.Mutex
	byType  map[string][]tenantry.Event
	records map[string][]*kgo.Record
}

func consumeAll(t *testing.T, cluster *kfake.Cluster, types []string) *kafkaEvents {
	t.Helper()
	topics := make([]string, len(types))
	for i, ty := range types {
		topics[i] = kafka.TopicFor("", ty)
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ke := &kafkaEvents{byType: map[string][]tenantry.Event{}, records: map[string][]*kgo.Record{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); client.Close() })
	wg.Go(func() {
		for ctx.Err() == nil {
			client.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var ev tenantry.Event
				if err := json.Unmarshal(r.Value, &ev); err != nil {
					t.Errorf("record on %s is not an event: %v", r.Topic, err)
					return
				}
				ke.mu.Lock()
				ke.byType[ev.EventType] = append(ke.byType[ev.EventType], ev)
				ke.records[ev.EventType] = append(ke.records[ev.EventType], r)
				ke.mu.Unlock()
			})
		}
	})
	return ke
}

func (k *kafkaEvents) count(eventType string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.byType[eventType])
}

// Ensure that with Kafka configured every kind of event reaches its topic
// with the envelope, keyed by tenant, each tenant's events in order, and
// that workers consume them from Kafka.
func TestEventsFlowThroughKafka(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cluster.Close)
		cfg := apptest.Config(t, shape)
		cfg.KafkaBrokers = cluster.ListenAddrs()
		env := apptest.Start(t, cfg)
		if env.App.Publisher == nil {
			t.Fatal("Kafka is configured but the app does not publish to it")
		}

		expected := []string{
			tenantry.EventUserRegistered, tenantry.EventUserUpdated, tenantry.EventSessionRevoked,
			tenantry.EventTenantCreated, tenantry.EventTenantUpdated, tenantry.EventTenantDeleted,
			tenantry.EventMemberAdded, tenantry.EventMemberRoleChanged, tenantry.EventMemberRemoved,
			tenantry.EventDocumentUploaded, tenantry.EventDocumentUpdated, tenantry.EventDocumentDeleted,
			tenantry.EventFileProcess, tenantry.EventFileDeleted, tenantry.EventUserPasswordChange,
			tenantry.EventAuditLog,
		}
		ke := consumeAll(t, cluster, expected)

		owner := env.SignUp(t, "Owner")
		member := env.SignUp(t, "Member")
		tenantID := env.CreateTenant(t, owner, "Kafka")
		users := "/api/tenants/" + tenantID + "/users/"
		env.AddMember(t, owner, tenantID, member, "user")
		env.Do(t, apptest.Request{Method: "PUT", Path: users + member.ID, Token: owner.AccessToken, Body: map[string]string{"role": "viewer"}}).Expect(t, 200, "")
		env.Do(t, apptest.Request{Method: "DELETE", Path: users + member.ID, Token: owner.AccessToken}).Expect(t, 200, "")
		env.Do(t, apptest.Request{Method: "PUT", Path: "/api/users/me", Token: member.AccessToken, Body: map[string]string{"last_name": "K"}}).Expect(t, 200, "")
		env.Do(t, apptest.Request{Method: "PUT", Path: "/api/users/me/password", Token: member.AccessToken,
			Body: map[string]string{"current_password": apptest.Password, "new_password": "Another-pass-9"}}).Expect(t, 200, "")
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/logout", Token: member.AccessToken}).Expect(t, 200, "")
		env.Do(t, apptest.Request{Method: "PUT", Path: "/api/tenants/" + tenantID, Token: owner.AccessToken, Body: map[string]string{"name": "Kafka 2"}}).Expect(t, 200, "")

		var docIDs []string
		for i := range 6 {
			doc := env.Upload(t, owner, tenantID, fmt.Sprintf("doc-%d.txt", i), []byte(fmt.Sprintf("content %d", i)))
			docIDs = append(docIDs, doc.ID)
		}
		last := env.Upload(t, owner, tenantID, "last.txt", []byte("last"))
		env.Do(t, apptest.Request{Method: "PUT", Path: "/api/tenants/" + tenantID + "/documents/" + last.ID, Token: owner.AccessToken,
			Body: map[string]string{"filename": "final.txt"}}).Expect(t, 200, "")
		env.Do(t, apptest.Request{Method: "DELETE", Path: "/api/tenants/" + tenantID + "/documents/" + last.ID, Token: owner.AccessToken}).Expect(t, 200, "")
		env.Do(t, apptest.Request{Method: "DELETE", Path: "/api/tenants/" + tenantID + "/files/" + last.FileID, Token: owner.AccessToken}).Expect(t, 200, "")

		// The file.process events are consumed from Kafka by this process's
		// worker half, which queues the inspection of each new file.
		var meta struct {
			FileMetadata map[string]any `json:"file_metadata"`
		}
		deadline := time.Now().Add(30 * time.Second)
		for meta.FileMetadata["detected_mime_type"] == nil {
			if time.Now().After(deadline) {
				t.Fatal("no file was processed from its Kafka event")
			}
			time.Sleep(50 * time.Millisecond)
			doc := env.Get(t, "/api/tenants/"+tenantID+"/documents/"+docIDs[0], owner.AccessToken).Expect(t, 200, "")
			var d struct {
				FileID string `json:"file_id"`
			}
			doc.Data(t, &d)
			env.Get(t, "/api/tenants/"+tenantID+"/files/"+d.FileID, owner.AccessToken).Expect(t, 200, "").Data(t, &meta)
		}

		env.Do(t, apptest.Request{Method: "DELETE", Path: "/api/tenants/" + tenantID, Token: owner.AccessToken}).Expect(t, 200, "")

		deadline = time.Now().Add(30 * time.Second)
		for _, ty := range expected {
			for ke.count(ty) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no %s event reached Kafka", ty)
				}
				time.Sleep(25 * time.Millisecond)
			}
		}
		for time.Now().Before(deadline) && ke.count(tenantry.EventDocumentUploaded) < 7 {
			time.Sleep(25 * time.Millisecond)
		}

		ke.mu.Lock()
		defer ke.mu.Unlock()
		for ty, events := range ke.byType {
			for i, ev := range events {
				r := ke.records[ty][i]
				if ev.EventID == "" || ev.Version != tenantry.EventVersion || ev.Timestamp.IsZero() || len(ev.Data) == 0 || ev.EventType != ty {
					t.Errorf("%s: envelope %+v", ty, ev)
				}
				wantKey := ev.TenantID
				if wantKey == "" {
					wantKey = ev.UserID
				}
				if wantKey == "" {
					wantKey = ev.EventID
				}
				if string(r.Key) != wantKey {
					t.Errorf("%s: key %q, want %q", ty, r.Key, wantKey)
				}
			}
		}
		// One tenant's uploads, keyed alike, are read in upload order.
		var got []string
		for _, ev := range ke.byType[tenantry.EventDocumentUploaded] {
			var d struct {
				DocumentID string `json:"document_id"`
			}
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			got = append(got, d.DocumentID)
		}
		if len(got) < 7 || fmt.Sprint(got[:6]) != fmt.Sprint(docIDs) {
			t.Fatalf("uploads read as %v, uploaded as %v", got, docIDs)
		}
	})
}

// A worker that reads the same event twice from Kafka, as at-least-once
// delivery allows, acts on it once.
func TestAnEventReadTwiceFromKafkaIsActedOnOnce(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cluster.Close)
		cfg := apptest.Config(t, shape)
		cfg.KafkaBrokers = cluster.ListenAddrs()
		env := apptest.Start(t, cfg)

		fileID := uuid.NewString()
		ev, err := outbox.NewEvent(tenantry.EventFileProcess, uuid.NewString(), "", map[string]string{"file_id": fileID})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for range 2 {
			if err := env.App.Publisher.Publish(ctx, []tenantry.Event{ev}); err != nil {
				t.Fatal(err)
			}
		}
		read := consumeAll(t, cluster, []string{tenantry.EventFileProcess})
		count := func(query string, arg string) int {
			var n int
			if err := env.App.Engines.Control.QueryRow(ctx, query, arg).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		deadline := time.Now().Add(15 * time.Second)
		for read.count(tenantry.EventFileProcess) < 2 || count(`SELECT count(*) FROM consumed_events WHERE event_id = $1`, ev.EventID) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the event was not consumed")
			}
			time.Sleep(25 * time.Millisecond)
		}
		time.Sleep(time.Second) // the second delivery is handled meanwhile
		if n := count(`SELECT count(*) FROM river_job WHERE kind = 'process_file' AND CAST(args AS TEXT) LIKE $1`, "%"+fileID+"%"); n != 1 {
			t.Fatalf("%d jobs for one event delivered twice", n)
		}
	})
}
