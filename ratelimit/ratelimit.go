// Package ratelimit limits how often one key (a client address, say) may do
// something. Both implementations use the generic cell rate algorithm, which
// allows a burst of up to Rate events and then one event per Period/Rate: in
// process memory for a single node, or in Redis so that every process of a
// deployment shares the same budget.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limit allows Rate events per Period, in bursts of up to Rate.
type Limit struct {
	Rate   int
	Period time.Duration
}

// Disabled reports whether the limit lets everything through.
func (l Limit) Disabled() bool { return l.Rate <= 0 }

// ParseLimit reads "N/s", "N/m" or "N/h" (or "0" to disable).
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "0" || s == "" {
		return Limit{}, nil
	}
	n, unit, ok := strings.Cut(s, "/")
	rate, err := strconv.Atoi(n)
	if !ok || err != nil || rate < 0 {
		return Limit{}, fmt.Errorf("rate limit %q: want N/s, N/m or N/h", s)
	}
	periods := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}
	p, ok := periods[unit]
	if !ok {
		return Limit{}, fmt.Errorf("rate limit %q: unit must be s, m or h", s)
	}
	return Limit{Rate: rate, Period: p}, nil
}

// Limiter decides whether one more event for a key is allowed now.
type Limiter interface {
	// Allow records an event for key if the limit allows it, and otherwise
	// says how long to wait.
	Allow(ctx context.Context, key string) (allowed bool, retryAfter time.Duration, err error)
}

// Memory is a Limiter keeping its state in this process.
type Memory struct {
	limit Limit
	now   func() time.Time

	mu    sync.Mutex
	tat   map[string]time.Time // theoretical arrival time per key
	calls int
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an in-process Limiter.
func NewMemory(limit Limit) *Memory {
	return &Memory{limit: limit, now: time.Now, tat: make(map[string]time.Time)}
}

// purgeEvery is how many calls pass between sweeps of keys whose budget has
// fully recovered, which bounds memory under a flood of distinct keys.
const purgeEvery = 4096

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	if m.limit.Disabled() {
		return true, 0, nil
	}
	emission := m.limit.Period / time.Duration(m.limit.Rate)
	burst := emission * time.Duration(m.limit.Rate)
	now := m.now()

	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.calls%purgeEvery == 0 {
		for k, t := range m.tat {
			if t.Before(now) {
				delete(m.tat, k)
			}
		}
	}
	tat := m.tat[key]
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(emission)
	if wait := next.Add(-burst).Sub(now); wait > 0 {
		return false, wait, nil
	}
	m.tat[key] = next
	return true, 0, nil
}

// Redis is a Limiter shared by every process using the same Redis.
type Redis struct {
	limiter *redis_rate.Limiter
	limit   redis_rate.Limit
	prefix  string
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a Limiter storing its state in Redis under prefix.
func NewRedis(client *redis.Client, limit Limit, prefix string) *Redis {
	return &Redis{
		limiter: redis_rate.NewLimiter(client),
		limit:   redis_rate.Limit{Rate: limit.Rate, Burst: limit.Rate, Period: limit.Period},
		prefix:  prefix,
	}
}

// Allow implements Limiter.
func (r *Redis) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	if r.limit.Rate <= 0 {
		return true, 0, nil
	}
	res, err := r.limiter.Allow(ctx, r.prefix+key, r.limit)
	if err != nil {
		return false, 0, fmt.Errorf("rate limit: %w", err)
	}
	return res.Allowed > 0, res.RetryAfter, nil
}
