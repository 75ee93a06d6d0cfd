//go:build unix

package testbin

import (
	"fmt"
	"os"
	"syscall"
)

// lock takes the build lock of env's build cache: an exclusive flock, which the
// kernel releases when the process ends, so a killed test leaves no stale lock.
func lock(env []string) (unlock func(), err error) {
	path, err := lockPath(env)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("testbin: build lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("testbin: build lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
