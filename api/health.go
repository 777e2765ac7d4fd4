package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry"
)

const readinessTimeout = 3 * time.Second

type serviceInfo struct {
	Status  string `json:"status" example:"healthy"`
	Service string `json:"service" example:"tenantry"`
	Version string `json:"version"`
}

type readiness struct {
	Status string            `json:"status" example:"ready"`
	Checks map[string]string `json:"checks" doc:"Each dependency and whether it answered."`
}

func (s *Server) registerHealth() {
	huma.Register(s.api, huma.Operation{
		OperationID: "get-health",
		Method:      http.MethodGet,
		Path:        "/health",
		Summary:     "Liveness",
		Description: "Answers 200 while the process serves HTTP. It checks no dependency; see /ready.",
		Tags:        []string{"Health"},
	}, func(ctx context.Context, _ *struct{}) (*response[serviceInfo], error) {
		return ok("Service is healthy", serviceInfo{Status: "healthy", Service: "tenantry", Version: s.cfg.Version}), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "get-ready",
		Method:      http.MethodGet,
		Path:        "/ready",
		Summary:     "Readiness",
		Description: "Checks the control database and every configured engine. Answers 503 SERVICE_UNAVAILABLE naming the ones that failed.",
		Tags:        []string{"Health"},
		Errors:      []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *struct{}) (*response[readiness], error) {
		checks, failed := s.checkReadiness(ctx)
		if len(failed) > 0 {
			return nil, &tenantry.Error{Code: tenantry.EUnavailable, Message: "Not ready", Details: checks}
		}
		return ok("Service is ready", readiness{Status: "ready", Checks: checks}), nil
	})
}

// checkReadiness runs every check at once, each under a timeout. The errors
// are logged; the response only says which dependency failed, since /ready is
// public and error texts can name hosts.
func (s *Server) checkReadiness(ctx context.Context) (map[string]string, []string) {
	ctx, cancel := context.WithTimeout(ctx, readinessTimeout)
	defer cancel()
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		checks = make(map[string]string, len(s.cfg.Readiness))
		failed []string
	)
	for _, c := range s.cfg.Readiness {
		wg.Go(func() {
			err := c.Check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				checks[c.Name] = "unavailable"
				failed = append(failed, c.Name)
				loggerFrom(ctx, s.logger).Warn("readiness check failed", "check", c.Name, "error", err)
				return
			}
			checks[c.Name] = "ok"
		})
	}
	wg.Wait()
	return checks, failed
}
