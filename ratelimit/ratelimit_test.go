package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/ratelimit"
)

func TestParseLimit(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]ratelimit.Limit{
		"10/m": {Rate: 10, Period: time.Minute},
		"5/s":  {Rate: 5, Period: time.Second},
		"1/h":  {Rate: 1, Period: time.Hour},
		"0":    {},
	} {
		got, err := ratelimit.ParseLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"ten/m", "10/d", "10", "-1/m"} {
		if _, err := ratelimit.ParseLimit(bad); err == nil {
			t.Errorf("ParseLimit(%q) accepted", bad)
		}
	}
}

// exercise checks a limiter of 5 per minute: a burst of five passes, the
// sixth waits, other keys are independent, and concurrent callers never get
// more than the burst.
func exercise(t *testing.T, l ratelimit.Limiter) {
	ctx := context.Background()
	for i := range 5 {
		if ok, _, err := l.Allow(ctx, "a"); !ok || err != nil {
			t.Fatalf("event %d refused: %v", i+1, err)
		}
	}
	ok, wait, err := l.Allow(ctx, "a")
	if ok || err != nil || wait <= 0 || wait > 13*time.Second {
		t.Fatalf("6th event: allowed=%v wait=%v err=%v; want refused with a wait of about 12s", ok, wait, err)
	}
	if ok, _, _ := l.Allow(ctx, "b"); !ok {
		t.Fatal("another key was limited")
	}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if ok, _, err := l.Allow(ctx, "c"); ok && err == nil {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 5 {
		t.Fatalf("%d of 50 concurrent events allowed, want 5", allowed.Load())
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	exercise(t, ratelimit.NewMemory(ratelimit.Limit{Rate: 5, Period: time.Minute}))
}

func TestRedisFake(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { client.Close() })
	exercise(t, ratelimit.NewRedis(client, ratelimit.Limit{Rate: 5, Period: time.Minute}, "test:"))
}

func TestRedis(t *testing.T) {
	t.Parallel()
	apptest.RequireRedis(t)
	opts, err := redis.ParseURL(apptest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	prefix := "tenantry-test:" + time.Now().Format(time.RFC3339Nano) + ":"
	exercise(t, ratelimit.NewRedis(client, ratelimit.Limit{Rate: 5, Period: time.Minute}, prefix))
}

func TestDisabled(t *testing.T) {
	t.Parallel()
	l := ratelimit.NewMemory(ratelimit.Limit{})
	for range 1000 {
		if ok, _, _ := l.Allow(context.Background(), "a"); !ok {
			t.Fatal("a disabled limit refused")
		}
	}
}
