// Package events serves a tenant's event stream to its administrators: the
// events the relay has published for the tenant, in stream order, paged by
// position.
package events

import (
	"context"
	"strconv"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
)

// Service reads tenants' event streams.
type Service struct {
	tenants *tenant.Service
	dbs     *tenantdb.Manager
}

// NewService returns a Service.
func NewService(tenants *tenant.Service, dbs *tenantdb.Manager) *Service {
	return &Service{tenants: tenants, dbs: dbs}
}

// Page is a slice of a stream and where to continue.
type Page struct {
	Events []outbox.Published
	// Next is the cursor of the last event returned, or the cursor given
	// when there was none: passing it back continues after this page.
	Next string
}

// Stream returns up to limit events of the tenant published after cursor
// (empty for the beginning of what is retained). Tenant admins only.
func (s *Service) Stream(ctx context.Context, tenantID, cursor string, limit int) (*Page, error) {
	mt, err := s.tenants.Authorize(ctx, tenantID, permission.EventsRead)
	if err != nil {
		return nil, err
	}
	var after int64
	if cursor != "" {
		if after, err = strconv.ParseInt(cursor, 10, 64); err != nil || after < 0 {
			return nil, tenantry.Errorf(tenantry.EBadRequest, "Invalid cursor")
		}
	}
	lease, err := s.dbs.Acquire(ctx, tenantdb.RefOf(&mt.Tenant))
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	events, err := outbox.Feed(ctx, lease.DB(), after, limit)
	if err != nil {
		return nil, err
	}
	next := cursor
	if len(events) > 0 {
		next = strconv.FormatInt(events[len(events)-1].Position, 10)
	}
	return &Page{Events: events, Next: next}, nil
}
