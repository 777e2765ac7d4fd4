package kafka

import "time"

// Backoff exposes backoff to the external tests.
func Backoff(failures int) time.Duration { return backoff(failures) }
