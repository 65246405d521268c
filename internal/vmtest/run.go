package vmtest

import (
	"context"
	"os/exec"
	"regexp"
	"sync/atomic"
	"time"
)

// guestRun is how one QEMU run ended.
type guestRun struct {
	Console  string
	Duration time.Duration
	// Matched: the console showed what the caller waited for (the guest was
	// stopped then). TimedOut: the time ran out first.
	Matched, TimedOut bool
	// Err is QEMU's own error, if it failed.
	Err error
}

// runGuest runs qemu with args until it exits, timeout passes, or the
// serial console (its stdout) matches expect (nil: never), and returns the
// console. Every VM of the tests runs through here.
func runGuest(ctx context.Context, qemu string, args []string, timeout time.Duration, expect *regexp.Regexp) guestRun {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	var console lockedBuffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &console, &console, nil
	start := time.Now()
	var matched atomic.Bool
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if expect == nil {
			return
		}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if expect.MatchString(console.String()) {
					matched.Store(true)
					cancel()
					return
				}
			}
		}
	}()
	err := cmd.Run()
	close(done)
	<-watched
	r := guestRun{Console: console.String(), Duration: time.Since(start), Err: err}
	r.Matched = expect != nil && (matched.Load() || expect.MatchString(r.Console))
	r.TimedOut = !r.Matched && ctx.Err() != nil
	return r
}
