package token

import "sync"

// verifiedCacheSize bounds each generation of the cache of verified access
// tokens: at about half a KiB a token, the two generations hold at most a
// few MiB.
const verifiedCacheSize = 4096

// verified remembers the claims of access tokens whose signature and claims
// were checked, so that a client presenting the same token on every request
// costs a map lookup rather than a JSON decode and an HMAC. Only what the
// token itself says is cached: expiry is checked again on every use, and the
// session behind the token is still looked up on every request.
//
// Two generations keep it bounded without per-entry bookkeeping: a hit in
// the old one moves the entry to the current one, and when the current one
// is full it becomes the old one, dropping whatever had not been used since.
type verified struct {
	mu       sync.Mutex
	cur, old map[string]Claims
}

func (v *verified) get(raw string) (Claims, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if c, ok := v.cur[raw]; ok {
		return c, true
	}
	c, ok := v.old[raw]
	if ok {
		delete(v.old, raw)
		v.putLocked(raw, c)
	}
	return c, ok
}

func (v *verified) put(raw string, c Claims) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.putLocked(raw, c)
}

func (v *verified) putLocked(raw string, c Claims) {
	if len(v.cur) >= verifiedCacheSize || v.cur == nil {
		v.old, v.cur = v.cur, make(map[string]Claims, verifiedCacheSize)
	}
	v.cur[raw] = c
}
