package outbox

import (
	"context"
	"fmt"
	"sync"

	"github.com/tenantry/tenantry"
)

// Handler acts on one event. Events are delivered at least once, so a
// handler must act once per event_id however often it sees it.
type Handler func(ctx context.Context, ev tenantry.Event) error

// Dispatcher is the Sink of a process without Kafka: it hands each event to
// the handlers subscribed to its type, in order. A handler's error fails
// the batch, which the relay offers again later.
//
// Handlers run while the relay holds the event's stream, so they must not
// wait on the tenant database the event came from: in the embedded shape
// that database has one connection. Queueing a job, which lives in the
// control database, is the way to do work there.
type Dispatcher struct {
	mu   sync.RWMutex
	subs []subscription
}

type subscription struct {
	types   map[string]bool // empty: every type
	handler Handler
}

var _ Sink = (*Dispatcher)(nil)

// NewDispatcher returns a Dispatcher without handlers.
func NewDispatcher() *Dispatcher { return &Dispatcher{} }

// Subscribe calls h for every event of the given types, or of every type
// when none is given.
func (d *Dispatcher) Subscribe(h Handler, eventTypes ...string) {
	s := subscription{types: map[string]bool{}, handler: h}
	for _, t := range eventTypes {
		s.types[t] = true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.subs = append(d.subs, s)
}

// Publish implements Sink.
func (d *Dispatcher) Publish(ctx context.Context, events []tenantry.Event) error {
	d.mu.RLock()
	subs := d.subs
	d.mu.RUnlock()
	for _, ev := range events {
		for _, s := range subs {
			if len(s.types) > 0 && !s.types[ev.EventType] {
				continue
			}
			if err := s.handler(ctx, ev); err != nil {
				return fmt.Errorf("handle %s event %s: %w", ev.EventType, ev.EventID, err)
			}
		}
	}
	return nil
}
