package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry/permission"
)

type streamInput struct {
	TenantPath
	After text `query:"after" doc:"Cursor returned by the previous page (next_cursor); omit to start at the oldest retained event."`
	Limit int  `query:"limit" minimum:"1" maximum:"100" default:"50"`
}

type eventView struct {
	Position  int64           `json:"position" doc:"Position in the tenant's stream."`
	EventID   string          `json:"event_id" format:"uuid"`
	EventType string          `json:"event_type" example:"document.uploaded"`
	Version   int             `json:"version"`
	TenantID  string          `json:"tenant_id,omitempty"`
	UserID    string          `json:"user_id,omitempty"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

type eventPage struct {
	Events     []eventView `json:"events"`
	NextCursor string      `json:"next_cursor" doc:"Pass as after to continue; unchanged when no newer event exists yet."`
	HasMore    bool        `json:"has_more" doc:"True when the page is full and more events may follow at once."`
}

func (s *Server) registerEvents() {
	huma.Register(s.api, requires(permission.EventsRead, huma.Operation{
		OperationID: "list-tenant-events", Method: http.MethodGet, Path: "/api/tenants/{tenant_id}/events", Tags: []string{"Events"},
		Summary: "The tenant's event stream (admins)",
		Description: "Events about the tenant and its documents, in the order they were published, each once, " +
			"with the same envelope as on Kafka. Page with the cursor of the last page; events are kept for the retention period.",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *streamInput) (*response[eventPage], error) {
		page, err := s.svc.Events.Stream(ctx, in.id(ctx), string(in.After), in.Limit)
		if err != nil {
			return nil, err
		}
		out := eventPage{Events: make([]eventView, len(page.Events)), NextCursor: page.Next, HasMore: len(page.Events) == in.Limit}
		for i, p := range page.Events {
			e := p.Event
			out.Events[i] = eventView{Position: p.Position, EventID: e.EventID, EventType: e.EventType, Version: e.Version,
				TenantID: e.TenantID, UserID: e.UserID, Timestamp: e.Timestamp.UTC(), Data: e.Data}
		}
		return ok("Events retrieved successfully", out), nil
	})
}
