package keyring

import (
	"sync"
	"time"
)

// cache holds unwrapped data keys for a bounded time and number, so that a
// key service round trip is not paid on every decryption, and a key does not
// stay in memory longer than it is in use.
type cache struct {
	ttl    time.Duration
	max    int
	mu     sync.Mutex
	keys   map[versionedScope]cached
	newest map[string]cachedVersion
}

type versionedScope struct {
	scope   string
	version int
}

type cached struct {
	key []byte
	at  time.Time
}

type cachedVersion struct {
	version int
	at      time.Time
}

func newCache(ttl time.Duration, max int) *cache {
	return &cache{ttl: ttl, max: max, keys: map[versionedScope]cached{}, newest: map[string]cachedVersion{}}
}

func (c *cache) key(scope string, version int) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := versionedScope{scope, version}
	e, ok := c.keys[id]
	if !ok {
		return nil, false
	}
	if time.Since(e.at) > c.ttl {
		c.dropLocked(id)
		return nil, false
	}
	return e.key, true
}

// newestVersion is the version that encrypts for scope, as last seen: a
// rotation by another process is followed within the time to live.
func (c *cache) newestVersion(scope string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.newest[scope]
	if !ok || time.Since(e.at) > c.ttl {
		return 0, false
	}
	return e.version, true
}

func (c *cache) put(scope string, version int, key []byte, newest bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.sweepLocked(now)
	id := versionedScope{scope, version}
	if _, ok := c.keys[id]; !ok && len(c.keys) >= c.max {
		c.evictOldestLocked()
	}
	c.keys[id] = cached{key: key, at: now}
	if newest {
		c.newest[scope] = cachedVersion{version: version, at: now}
	}
}

func (c *cache) forget(scope string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.keys {
		if id.scope == scope {
			c.dropLocked(id)
		}
	}
	delete(c.newest, scope)
}

// sweepLocked drops the keys whose time is up, so that a key does not wait
// for its next use to leave memory.
func (c *cache) sweepLocked(now time.Time) {
	for id, e := range c.keys {
		if now.Sub(e.at) > c.ttl {
			c.dropLocked(id)
		}
	}
}

func (c *cache) evictOldestLocked() {
	var oldest versionedScope
	var at time.Time
	for id, e := range c.keys {
		if at.IsZero() || e.at.Before(at) {
			oldest, at = id, e.at
		}
	}
	c.dropLocked(oldest)
}

// dropLocked overwrites the key before letting it go: the garbage collector
// would leave the bytes in freed memory until reused.
func (c *cache) dropLocked(id versionedScope) {
	if e, ok := c.keys[id]; ok {
		clear(e.key)
		delete(c.keys, id)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys)
}
