package move

import "context"

// HoldWhileFenced makes moves with cfg call hold with the fence raised,
// before the last changes are copied.
func HoldWhileFenced(cfg *Config, hold func(ctx context.Context)) { cfg.hold = hold }
