//go:build unix

package history

import "golang.org/x/sys/unix"

// Now reads CLOCK_MONOTONIC in nanoseconds: one clock for every process on the
// machine, which no wall-clock step moves, so operations recorded by different
// processes can be ordered.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fallback()
	}
	return ts.Nano()
}
