package account

import (
	"context"

	"github.com/tenantry/tenantry/sqldb"
)

// Attempt exposes a reserved password attempt to the external tests.
type Attempt = attempt

// Reserve counts an attempt as Login does before checking a password.
func (s *Service) Reserve(ctx context.Context, email string) (*Attempt, error) {
	return s.reserve(ctx, email)
}

// Succeeded clears the count as Login does after the right password.
func (s *Service) Succeeded(ctx context.Context, q sqldb.Querier, at *Attempt) error {
	return s.succeeded(ctx, q, at)
}
