package keyring

// CachedKeys is how many unwrapped keys k holds in memory.
func CachedKeys(k *Keyring) int { return k.cache.len() }
