// Command offkit builds signed offline kits and verifies, installs and
// serves them on an air-gapped site. It only parses flags and wires the
// packages together; see DESIGN.md for the contracts.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/offkit/offkit/internal/errdef"
)

// version is set with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// app carries what every subcommand shares.
type app struct {
	json   bool
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	now    func() time.Time
	// drain bounds how long the command may take to stop once cancelled.
	drain time.Duration
}

// memoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT says
// otherwise: offkit streams, so its live heap is a few frames, and a limit
// keeps the garbage collector from letting the heap double past it.
const memoryLimit = 64 << 20

func main() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(memoryLimit)
	}
	a := &app{stdout: os.Stdout, stderr: os.Stderr, now: time.Now, drain: defaultDrain}
	ctx, signalled := onSignal(a)
	err := newRoot(a).ExecuteContext(ctx)
	if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %w", err, context.Canceled)
	}
	code := errdef.ExitCode(err)
	if code == errdef.ExitCancelled {
		code = signalled()
	}
	if err != nil {
		if a.json {
			json.NewEncoder(a.stdout).Encode(map[string]any{"error": err.Error(), "exitCode": code})
		}
		fmt.Fprintf(a.stderr, "offkit: %v\n", err)
	}
	os.Exit(code)
}

// defaultDrain is how long a command may take to stop after SIGINT or
// SIGTERM cancelled it; serve sets its own (its shutdown grace).
const defaultDrain = 5 * time.Second

// onSignal cancels the returned context on SIGINT or SIGTERM. The command
// then stops at its next check and exits 130 (SIGINT) or 143 (SIGTERM), as
// signalled reports; a second signal, or a command still running a.drain
// after the first (blocked in a system call), exits at once with that code.
func onSignal(a *app) (context.Context, func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	code := make(chan int, 1)
	go func() {
		sig := <-sigs
		c := errdef.ExitCancelled
		if sig == syscall.SIGTERM {
			c = errdef.ExitTerminated
		}
		code <- c
		cancel()
		select {
		case <-sigs:
		case <-time.After(a.drain):
		}
		fmt.Fprintf(a.stderr, "offkit: %v: cancelled\n", sig)
		os.Exit(c)
	}()
	return ctx, func() int {
		select {
		case c := <-code:
			return c
		default:
			return errdef.ExitCancelled
		}
	}
}

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "offkit",
		Short:         "Carry software into air-gapped sites and keep it trustworthy there",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		},
	}
	root.PersistentFlags().BoolVar(&a.json, "json", false, "machine-readable output on stdout")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%s: %v: %w", cmd.CommandPath(), err, errdef.ErrInvalid)
	})
	root.AddCommand(
		a.buildCmd(), a.signCmd(), a.inspectCmd(), a.verifyCmd(), a.installCmd(),
		a.statusCmd(), a.rollbackCmd(), a.keyCmd(),
		a.pushCmd(),
	)
	root.AddCommand(a.serveCmd())
	return root
}

// usageError is an invalid command line (exit 11).
func usageError(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errdef.ErrInvalid)
}

// emit prints v as JSON with --json, else calls text.
func (a *app) emit(v any, text func(w io.Writer)) error {
	if a.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(a.stdout)
	return nil
}

// progress returns a progress callback: a bar on a terminal, a log line
// every 10% otherwise, nothing with --json.
func (a *app) progress(what string) (func(done, total int64), func()) {
	if a.json {
		return nil, func() {}
	}
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		var bar *progressbar.ProgressBar
		return func(done, total int64) {
				if bar == nil {
					bar = progressbar.DefaultBytes(total, what)
				}
				bar.Set64(done)
			}, func() {
				if bar != nil {
					bar.Finish()
				}
			}
	}
	last := int64(-1)
	return func(done, total int64) {
		if total < 64<<20 {
			return
		}
		pct := done * 100 / total
		if pct/10 != last/10 {
			last = pct
			a.log.Info(what, "percent", pct, "bytes", done, "total", total)
		}
	}, func() {}
}
