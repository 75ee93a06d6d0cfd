//go:build !unix

package history

// Now is this process's monotonic clock: histories of several processes need a unix
// system.
func Now() int64 { return fallback() }
