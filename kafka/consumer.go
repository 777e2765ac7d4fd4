package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tenantry/tenantry"
)

const (
	// maxPollRecords bounds the records handled between two chances for
	// the group to rebalance.
	maxPollRecords = 100
	// retryMin and retryMax bound the wait before a failed event is
	// handled again; the wait doubles with each failure of the same event.
	retryMin = 100 * time.Millisecond
	retryMax = 10 * time.Second
	// commitTimeout bounds each commit. Commits do not end with Run's
	// context, so that work handled just before Run stops is not redone.
	commitTimeout = 10 * time.Second
	// deadLetterTimeout bounds the wait for a dead letter's
	// acknowledgement; one that times out is tried again after the
	// partition's next backoff.
	deadLetterTimeout = 10 * time.Second
	// maxErrorHeader bounds the handler error a dead letter carries.
	maxErrorHeader = 4 << 10
)

// Headers a dead letter carries besides those of the record it copies.
// Times are RFC 3339 in UTC with nanoseconds; numbers are decimal.
const (
	HeaderDLQError             = "dlq_error"
	HeaderDLQAttempts          = "dlq_attempts"
	HeaderDLQOriginalTopic     = "dlq_original_topic"
	HeaderDLQOriginalPartition = "dlq_original_partition"
	HeaderDLQOriginalOffset    = "dlq_original_offset"
	HeaderDLQFirstFailure      = "dlq_first_failure"
	HeaderDLQLastFailure       = "dlq_last_failure"
)

// Consumer reads events as a member of a consumer group and hands each to a
// handler, at least once: a record's offset is committed only after the
// handler returned nil for it and for every earlier record of its partition,
// so a crash or a rebalance redelivers work rather than losing it.
//
// A handler error holds back the event's partition only: the event is
// handled again after a backoff that doubles from 100ms up to 10s, while
// other partitions go on. After Config.MaxAttempts failures the record is
// written to its topic's dead letter topic (DeadLetterTopic), with headers
// saying why (see HeaderDLQError and the headers after it), and the
// partition goes on past it. The offset past it is committed only once the
// brokers acknowledged the dead letter, so a crash in between hands the
// event to the handler again rather than losing it; a dead letter may then
// be written twice, with the same event_id. A record whose value is not an
// event is dead-lettered at once, since no retry can fix it.
//
// Handlers should return well within the group's rebalance timeout (60s by
// default); the Consumer commits what it has handled and hands over its
// partitions when a rebalance is waiting, but cannot interrupt a handler.
type Consumer struct {
	client *kgo.Client
	// dlq writes dead letters. It is a client of its own because the
	// consuming one must not create topics: it would create the topics
	// it waits for.
	dlq         *kgo.Client
	handle      func(context.Context, tenantry.Event) error
	log         *slog.Logger
	metrics     Metrics
	maxAttempts int

	// rebalanceWaiting is set by franz-go when a rebalance waits for the
	// batch in hand; the rest of the batch is then left for later.
	rebalanceWaiting atomic.Bool
	running          atomic.Bool
	// retries holds the partitions held back for a failed event. Only the
	// one running Run uses it; it outlives Run because the partitions stay
	// paused in the client until a later Run resumes them.
	retries map[partition]*retry
}

// NewConsumer returns a Consumer of the topics of eventTypes in cfg's group.
// Topics that do not exist yet are picked up once they are created. A group
// seen for the first time starts at the beginning of each partition, so no
// event published before the first worker started is missed.
//
// The Consumer joins the group when it is created, not when Run starts; call
// Close to leave it.
func NewConsumer(cfg Config, eventTypes []string, handle func(context.Context, tenantry.Event) error) (*Consumer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if handle == nil {
		return nil, errors.New("kafka: consumer needs a handler")
	}
	var topics []string
	seen := make(map[string]bool)
	for _, t := range eventTypes {
		if t == "" {
			return nil, errors.New("kafka: empty event type")
		}
		topic := TopicFor(cfg.TopicPrefix, t)
		if !seen[topic] {
			seen[topic] = true
			topics = append(topics, topic)
		}
	}
	if len(topics) == 0 {
		return nil, errors.New("kafka: consumer needs at least one event type")
	}

	c := &Consumer{handle: handle, log: cfg.Logger, metrics: cfg.Metrics, maxAttempts: cfg.MaxAttempts,
		retries: make(map[partition]*retry)}
	opts := append(cfg.clientOpts(),
		kgo.ConsumerGroup(cfg.GroupID),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Partitions cannot move while a batch is handled, so a commit
		// never lands on a partition another member already owns.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) {
			c.rebalanceWaiting.Store(true)
		}),
		// A missing topic is looked up again this often; one appears
		// when its event type is first published, and workers should
		// see it in about a second, not in franz-go's default five.
		kgo.MetadataMinAge(time.Second),
		// A resumed partition joins the next fetch request, not the one
		// already waiting for data; a shorter wait (Java's default) keeps
		// a retry from coming seconds after its backoff.
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: creating consumer: %w", err)
	}
	dlq, err := kgo.NewClient(append(cfg.clientOpts(),
		kgo.AllowAutoTopicCreation(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("kafka: creating dead letter producer: %w", err)
	}
	c.client, c.dlq = client, dlq
	return c, nil
}

// partition names one partition of one topic.
type partition struct {
	topic string
	index int32
}

// retry tracks the event a partition is held back for.
type retry struct {
	offset      int64
	attempts    int
	at          time.Time // when the partition is fetched again
	paused      bool
	first, last time.Time // when the event failed first and last
}

// Run handles events until ctx is done, then commits what it handled and
// returns nil. It returns an error only if the Consumer was closed. Run may
// be called again after it returned, but not concurrently.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("kafka: consumer is already running")
	}
	defer c.running.Store(false)

	for {
		c.resumeDue(time.Now())
		fetches := c.poll(ctx)
		if fetches.IsClientClosed() {
			c.client.AllowRebalance()
			return fmt.Errorf("kafka: consuming: %w", kgo.ErrClientClosed)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			// The poll's own deadline or Run's end, not a broker error.
			if topic == "" && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
				return
			}
			c.metrics.ConsumeFailed()
			c.log.Warn("kafka: fetch error", "topic", topic, "partition", partition, "error", err)
		})
		c.handleBatch(ctx, fetches)
		c.client.AllowRebalance()
		c.rebalanceWaiting.Store(false)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// poll waits for records, but no longer than until the next held-back
// partition is due to be resumed.
func (c *Consumer) poll(ctx context.Context) kgo.Fetches {
	var wake time.Time
	for _, r := range c.retries {
		if r.paused && (wake.IsZero() || r.at.Before(wake)) {
			wake = r.at
		}
	}
	if wake.IsZero() {
		return c.client.PollRecords(ctx, maxPollRecords)
	}
	pctx, cancel := context.WithDeadline(ctx, wake)
	defer cancel()
	return c.client.PollRecords(pctx, maxPollRecords)
}

// handleBatch hands the polled records to the handler in order, partition by
// partition, and commits what was handled. A partition whose records were
// not all handled — a handler failed, ctx is done, or a rebalance is waiting
// — is rewound to its first unhandled record, so it is fetched again rather
// than skipped; a failed partition is also paused until its retry is due.
func (c *Consumer) handleBatch(ctx context.Context, fetches kgo.Fetches) {
	handled := make(map[partition]*kgo.Record)
	rewind := make(map[string]map[int32]kgo.EpochOffset)
	pause := make(map[string][]int32)
	stopped := false
	rewindTo := func(r *kgo.Record) {
		if rewind[r.Topic] == nil {
			rewind[r.Topic] = make(map[int32]kgo.EpochOffset)
		}
		rewind[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
	}

	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		key := partition{p.Topic, p.Partition}
		for _, r := range p.Records {
			if _, held := rewind[r.Topic][r.Partition]; held {
				return
			}
			if stopped || ctx.Err() != nil || c.rebalanceWaiting.Load() {
				stopped = true
				rewindTo(r)
				return
			}
			ev, err := decode(r)
			undecodable := err != nil
			if err == nil {
				err = c.handle(ctx, ev)
				if err != nil && ctx.Err() != nil {
					// Stopping, not failing: the event is handled again
					// on the next Run, here or in another member.
					rewindTo(r)
					stopped = true
					return
				}
			} else {
				err = fmt.Errorf("not an event: %w", err)
			}
			if err != nil {
				if !c.fail(ctx, key, r, ev, err, undecodable) {
					rewindTo(r)
					pause[r.Topic] = append(pause[r.Topic], r.Partition)
					return
				}
			}
			handled[key] = r
			if h := c.retries[key]; h != nil && r.Offset >= h.offset {
				delete(c.retries, key)
			}
		}
	})

	// Pause before rewinding, so the rewound partition is not fetched
	// again before its retry is due.
	if len(pause) > 0 {
		c.client.PauseFetchPartitions(pause)
	}
	if len(rewind) > 0 {
		c.client.SetOffsets(rewind)
	}
	c.commit(ctx, handled)
}

// decode returns the event in r's value.
func decode(r *kgo.Record) (tenantry.Event, error) {
	var ev tenantry.Event
	if err := json.Unmarshal(r.Value, &ev); err != nil {
		return ev, err
	}
	if ev.EventID == "" || ev.EventType == "" {
		return ev, errors.New("no event_id or event_type")
	}
	return ev, nil
}

// fail records that the record r could not be handled, and reports whether
// the partition may go on past it: true once r is dead-lettered, which
// happens when it has failed maxAttempts times or, being undecodable, at
// once. Otherwise r's next attempt is scheduled.
func (c *Consumer) fail(ctx context.Context, key partition, r *kgo.Record, ev tenantry.Event, err error, undecodable bool) bool {
	now := time.Now()
	h := c.retries[key]
	if h == nil || h.offset != r.Offset {
		h = &retry{offset: r.Offset, first: now}
		c.retries[key] = h
	}
	h.attempts++
	h.last = now
	c.metrics.ConsumeFailed()
	log := c.log.With("event_id", ev.EventID, "event_type", ev.EventType, "tenant_id", ev.TenantID,
		"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "attempt", h.attempts, "error", err)

	if h.attempts >= c.maxAttempts || undecodable {
		dlq := DeadLetterTopic(r.Topic)
		derr := c.deadLetter(ctx, r, h, err)
		if derr == nil {
			delete(c.retries, key)
			c.metrics.DeadLettered()
			log.Error("kafka: gave up on an event; it is in the dead letter topic", "dead_letter_topic", dlq)
			return true
		}
		c.metrics.ConsumeFailed()
		log = log.With("dead_letter_topic", dlq, "dead_letter_error", derr)
	}
	delay := backoff(h.attempts)
	h.at = now.Add(delay)
	h.paused = true
	log.Warn("kafka: event handler failed; will retry", "retry_in", delay)
	return false
}

// deadLetter writes a copy of r, with headers saying why, to its topic's
// dead letter topic and waits until the brokers acknowledged it. The copy
// keeps r's key, so a tenant's dead letters stay in order too.
func (c *Consumer) deadLetter(ctx context.Context, r *kgo.Record, h *retry, cause error) error {
	msg := cause.Error()
	if len(msg) > maxErrorHeader {
		msg = msg[:maxErrorHeader]
	}
	headers := append(slices.Clip(r.Headers),
		kgo.RecordHeader{Key: HeaderDLQError, Value: []byte(msg)},
		kgo.RecordHeader{Key: HeaderDLQAttempts, Value: []byte(strconv.Itoa(h.attempts))},
		kgo.RecordHeader{Key: HeaderDLQOriginalTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderDLQOriginalPartition, Value: []byte(strconv.FormatInt(int64(r.Partition), 10))},
		kgo.RecordHeader{Key: HeaderDLQOriginalOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: HeaderDLQFirstFailure, Value: []byte(h.first.UTC().Format(time.RFC3339Nano))},
		kgo.RecordHeader{Key: HeaderDLQLastFailure, Value: []byte(h.last.UTC().Format(time.RFC3339Nano))},
	)
	// Not cut short by Run's end: a dead letter acknowledged lets the
	// offset past it be committed before Run returns.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadLetterTimeout)
	defer cancel()
	rec := &kgo.Record{Topic: DeadLetterTopic(r.Topic), Key: r.Key, Value: r.Value, Headers: headers}
	if err := c.dlq.ProduceSync(dctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("kafka: writing to %s: %w", rec.Topic, err)
	}
	return nil
}

// backoff returns the wait before the attempt after the given number of
// failures.
func backoff(failures int) time.Duration {
	d := retryMin
	for i := 1; i < failures && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

// resumeDue resumes fetching the held-back partitions whose retry is due.
func (c *Consumer) resumeDue(now time.Time) {
	var resume map[string][]int32
	for key, h := range c.retries {
		if h.paused && !now.Before(h.at) {
			h.paused = false
			if resume == nil {
				resume = make(map[string][]int32)
			}
			resume[key.topic] = append(resume[key.topic], key.index)
		}
	}
	if resume != nil {
		c.client.ResumeFetchPartitions(resume)
	}
}

// commit commits, for each partition, the offset after its last handled
// record.
func (c *Consumer) commit(ctx context.Context, handled map[partition]*kgo.Record) {
	if len(handled) == 0 {
		return
	}
	records := make([]*kgo.Record, 0, len(handled))
	for _, r := range handled {
		records = append(records, r)
	}
	// Commit even when Run is stopping: the work is done, and whoever
	// owns the partition next would otherwise do it again.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := c.client.CommitRecords(cctx, records...); err != nil {
		c.metrics.ConsumeFailed()
		c.log.Warn("kafka: committing offsets failed; handled events may be delivered again", "error", err)
	}
}

// Close leaves the group and releases the Consumer's connections. Call it
// after Run returned; a Run still going returns an error.
func (c *Consumer) Close() {
	c.client.CloseAllowingRebalance()
	c.dlq.Close()
}
