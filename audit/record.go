package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
)

// Record is what services add to the audit entry of the request they serve.
// The HTTP layer puts one in each audited request's context and writes the
// entry once the request's outcome is known; the functions below fill it in
// and do nothing when the context carries none (a command, a background
// job), so services call them unconditionally.
type Record struct {
	mu         sync.Mutex
	actorID    string
	action     string
	targetType string
	targetID   string
	tenantID   string
	outcome    string
	details    map[string]json.RawMessage
}

type recordKey struct{}

// NewContext returns a copy of ctx carrying a new, empty Record, and the
// Record.
func NewContext(ctx context.Context) (context.Context, *Record) {
	r := &Record{}
	return context.WithValue(ctx, recordKey{}, r), r
}

func fromContext(ctx context.Context) *Record {
	r, _ := ctx.Value(recordKey{}).(*Record)
	return r
}

// Annotate adds key to the entry's details. The value is encoded as JSON at
// once, so the entry shows it as it was at the call ("before" values stay
// what they were). Keys "status" and "error_code" are the HTTP layer's.
func Annotate(ctx context.Context, key string, value any) {
	r := fromContext(ctx)
	if r == nil {
		return
	}
	b, err := json.Marshal(value)
	if err != nil {
		// An annotation must never cost the request or the entry; say
		// what could not be recorded instead.
		b, _ = json.Marshal(fmt.Sprintf("unencodable %T: %v", value, err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.details == nil {
		r.details = map[string]json.RawMessage{}
	}
	r.details[key] = b
}

// SetActor names the user who acted when authentication did not establish
// one: the account a login, a refresh or a password reset was for.
func SetActor(ctx context.Context, userID string) {
	if r := fromContext(ctx); r != nil {
		r.mu.Lock()
		r.actorID = userID
		r.mu.Unlock()
	}
}

// SetTarget names what the action was done to, when the route's path does
// not (a document just uploaded, a user just registered).
func SetTarget(ctx context.Context, targetType, id string) {
	if r := fromContext(ctx); r != nil {
		r.mu.Lock()
		r.targetType, r.targetID = targetType, id
		r.mu.Unlock()
	}
}

// SetTenant puts the entry into the tenant's chain: call it once the caller
// is known to have access to the tenant (a tenant just created, say).
func SetTenant(ctx context.Context, tenantID string) {
	if r := fromContext(ctx); r != nil {
		r.mu.Lock()
		r.tenantID = tenantID
		r.mu.Unlock()
	}
}

// SetAction replaces the action the HTTP layer derives from the route, for
// a request that turned out to be something more specific.
func SetAction(ctx context.Context, action string) {
	if r := fromContext(ctx); r != nil {
		r.mu.Lock()
		r.action = action
		r.mu.Unlock()
	}
}

// SetOutcome replaces the outcome the HTTP layer derives from the status,
// for a request whose status does not tell (a refused sign-in sent back to
// the application with a redirect).
func SetOutcome(ctx context.Context, outcome string) {
	if r := fromContext(ctx); r != nil {
		r.mu.Lock()
		r.outcome = outcome
		r.mu.Unlock()
	}
}

// Outcome returns the outcome set with SetOutcome.
func (r *Record) Outcome() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outcome
}

// ActorID returns the actor set with SetActor.
func (r *Record) ActorID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.actorID
}

// Action returns the action set with SetAction.
func (r *Record) Action() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.action
}

// Target returns the target set with SetTarget.
func (r *Record) Target() (targetType, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.targetType, r.targetID
}

// TenantID returns the tenant set with SetTenant.
func (r *Record) TenantID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tenantID
}

// Details returns a copy of the annotations, each encoded as JSON.
func (r *Record) Details() map[string]json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.details)
}
