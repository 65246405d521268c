package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/x/term"
	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/media"
	"github.com/homestaker/homestaker/report"
)

// flashLoopFileEnv names a file whose loop device `flash` may write. Loop
// devices are never offered as disks; naming the file behind one is how
// tests and bench/flash.sh flash a loop device standing in for a USB stick.
const flashLoopFileEnv = "HOMESTAKER_FLASH_LOOP_FILE"

// runFlash is `homestaker flash --image FILE --device DEV`.
func runFlash(ctx context.Context, env *cliEnv, args []string) int {
	return runFlashWith(ctx, env, args, flashDeps{
		now: time.Now,
		isTerminal: func(w io.Writer) bool {
			f, ok := w.(*os.File)
			return ok && term.IsTerminal(f.Fd())
		},
	})
}

// flashDeps are the capabilities runFlash uses; tests replace them.
type flashDeps struct {
	now        func() time.Time
	isTerminal func(w io.Writer) bool
}

func runFlashWith(ctx context.Context, env *cliEnv, args []string, deps flashDeps) int {
	fl := flag.NewFlagSet("flash", flag.ContinueOnError)
	fl.SetOutput(env.stderr)
	imagePath := fl.String("image", "", "the ISO or SD-card image to write (not compressed)")
	device := fl.String("device", "", "the whole disk to erase and write: /dev/sdX or /dev/disk/by-id/…")
	dryRun := fl.Bool("dry-run", false, "do every check and say what would be written; write nothing")
	yes := fl.Bool("yes", false, "do not ask (needs --confirm-device)")
	confirm := fl.String("confirm-device", "", "the device to erase, named again, with --yes")
	fl.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: homestaker flash --image FILE --device DEV [--dry-run] [--yes --confirm-device DEV]")
		fmt.Fprintln(env.stderr, "Writes the image to the device, erasing everything on it, then reads it back and compares.")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(env.stderr, "homestaker flash: unexpected argument %q\n", fl.Arg(0))
		return exitUsage
	}
	if *imagePath == "" || *device == "" {
		fmt.Fprintln(env.stderr, "homestaker flash: --image FILE and --device DEV are both required (homestaker disk list shows the disks)")
		return exitUsage
	}
	if *yes != (*confirm != "") {
		fmt.Fprintln(env.stderr, "homestaker flash: --yes and --confirm-device DEV go together: name the device you are erasing")
		return exitUsage
	}

	out := env.stderr
	if *dryRun {
		out = env.stdout
	}
	progress := &progressPrinter{w: out, tty: deps.isTerminal(out), now: deps.now, every: 5 * time.Second}
	f := &media.Flasher{
		System:          disk.System{Root: env.getenv(systemRootEnv)},
		Reporter:        progress,
		LoopBackingFile: env.getenv(flashLoopFileEnv),
		Now:             deps.now,
	}
	fail := func(err error) int {
		progress.end()
		fmt.Fprintf(env.stderr, "homestaker flash: %v\n", err)
		var refused *disk.RefusedError
		var badImage *media.BadImageError
		switch {
		case errors.Is(err, context.Canceled):
			return exitInterrupt
		case errors.As(err, &refused):
			return exitRefused
		case errors.As(err, &badImage):
			return exitUsage
		}
		return exitFailure
	}

	job, err := f.Prepare(*imagePath, *device)
	if err != nil {
		return fail(err)
	}
	t := job.Target
	fmt.Fprintf(out, "Target: %s\n", t.Path)
	if t.ByID != "" && t.ByID != t.Path {
		fmt.Fprintf(out, "  by-id: %s\n", t.ByID)
	}
	if t.Model != "" {
		fmt.Fprintf(out, "  model: %s\n", t.Model)
	}
	fmt.Fprintf(out, "  size:  %s (%d bytes)\n", sizeText(t.SizeBytes), t.SizeBytes)
	fmt.Fprintf(out, "Image:  %s (%s, %d bytes)\n", job.Image, sizeText(uint64(job.ImageBytes)), job.ImageBytes)
	if !*dryRun {
		fmt.Fprintf(env.stderr, "This erases everything on %s", job.Device)
		if len(t.Partitions) > 0 {
			fmt.Fprintf(env.stderr, ", including its partitions %s", strings.Join(t.Partitions, ", "))
		}
		fmt.Fprintln(env.stderr, ".")
		names := []string{job.Device, t.Path}
		if t.ByID != "" {
			names = append(names, t.ByID)
		}
		if code := confirmTargetFor(env, "flash", *yes, *confirm, job.Device, names); code != exitOK {
			return code
		}
	}
	res, err := f.Flash(ctx, job, media.FlashOptions{DryRun: *dryRun})
	if err != nil {
		return fail(err)
	}
	progress.end()
	if *dryRun {
		fmt.Fprintln(env.stdout, "dry run: nothing was written")
		return exitOK
	}
	fmt.Fprintf(env.stdout, "%s holds %s and reads back identical (SHA-256 %s): write %.2f s at %.0f MB/s, verify %.2f s\n",
		job.Device, job.Image, res.SHA256, res.Write.Seconds(), float64(res.Bytes)/res.Write.Seconds()/1e6, res.Verify.Seconds())
	return exitOK
}

// progressPrinter shows a flash's events as lines. Progress events (those
// with a Total) redraw one line in place on a terminal; elsewhere (a log, a
// pipe) one progress line is printed every interval, plus the first and last.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	every time.Duration

	open      bool // a progress line is drawn without its newline
	lastPrint time.Time
}

func (p *progressPrinter) Report(e report.Event) {
	if e.Total <= 0 {
		p.end()
		printEvent(p.w, e)
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", e.Message)
		p.open = true
		if e.Done >= e.Total {
			p.end()
		}
		return
	}
	t := p.now()
	if e.Done == 0 || e.Done >= e.Total || t.Sub(p.lastPrint) >= p.every {
		p.lastPrint = t
		fmt.Fprintln(p.w, e.Message)
	}
}

// end finishes a progress line drawn in place.
func (p *progressPrinter) end() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}
