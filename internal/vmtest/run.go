package vmtest

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
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

// nicArgs are QEMU's arguments for virtio network cards on a restricted
// user network: the guest reaches nothing outside.
func nicArgs(nics []NIC) []string {
	var args []string
	for i, n := range nics {
		args = append(args,
			"-netdev", fmt.Sprintf("user,id=net%d,restrict=on", i),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=net%d,mac=%s", i, n.MAC))
	}
	return args
}

// scriptResult is the Result of a guest that runs a test script: its exit
// status from the console's exit marker, or a match of Expect; anything
// else is an error showing the end of the console.
func scriptResult(what string, run guestRun, timeout time.Duration) (Result, error) {
	res := Result{Console: run.Console, Duration: run.Duration, ExitCode: -1, Matched: run.Matched}
	if m := regexp.MustCompile(exitMarker + `(\d+)`).FindStringSubmatch(res.Console); m != nil {
		res.ExitCode, _ = strconv.Atoi(m[1])
		return res, nil
	}
	if res.Matched {
		return res, nil
	}
	if run.TimedOut {
		return res, fmt.Errorf("%s did not finish within %s; console:\n%s", what, timeout, tail(res.Console, 60))
	}
	return res, fmt.Errorf("%s stopped without an exit status (qemu: %v); console:\n%s", what, run.Err, tail(res.Console, 60))
}
