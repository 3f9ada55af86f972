// Command offkit builds signed offline kits and verifies, installs and
// serves them on an air-gapped site. It only parses flags and wires the
// packages together; see docs/ for the contracts.
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
	"strings"
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
	json bool
	// tty: stderr is a terminal (progress bars instead of log lines).
	tty    bool
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	now    func() time.Time
	// drain bounds how long the command may take to stop once cancelled.
	drain time.Duration
}

func main() {
	limitMemory()
	a := &app{stdout: os.Stdout, stderr: os.Stderr, now: time.Now, drain: defaultDrain, tty: term.IsTerminal(int(os.Stderr.Fd()))}
	stop := startProfile()
	code := a.run(onSignal(a), os.Args[1:])
	stop()
	os.Exit(code)
}

// errTerminated is the cancellation cause of a SIGTERM (exit 143); any other
// cancellation is a SIGINT's (exit 130).
var errTerminated = errors.New("terminated")

// run executes the command line args and returns the exit code; a failure
// is written to stderr, and with --json also as {"error", "exitCode"} on
// stdout. Cancelling ctx stops the command: exit 130, or 143 when the
// cancellation cause is errTerminated.
func (a *app) run(ctx context.Context, args []string) int {
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	root := newRoot(a)
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %w", err, context.Canceled)
	}
	code := errdef.ExitCode(err)
	if code == errdef.ExitCancelled && errors.Is(context.Cause(ctx), errTerminated) {
		code = errdef.ExitTerminated
	}
	if err != nil {
		// A command line that did not parse may have stopped before --json.
		if a.json || wantsJSON(args) {
			json.NewEncoder(a.stdout).Encode(errorOutput{Error: err.Error(), ExitCode: code})
		}
		fmt.Fprintf(a.stderr, "offkit: %v\n", err)
	}
	return code
}

// errorOutput is what --json prints on stdout for every failure
// (schemas/output/error.schema.json).
type errorOutput struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exitCode"`
}

// wantsJSON reports whether args ask for --json before any "--".
func wantsJSON(args []string) bool {
	for _, arg := range args {
		switch arg {
		case "--":
			return false
		case "--json", "--json=true", "--json=1":
			return true
		}
	}
	return false
}

// defaultDrain is how long a command may take to stop after SIGINT or
// SIGTERM cancelled it; serve sets its own (its shutdown grace).
const defaultDrain = 5 * time.Second

// onSignal cancels the returned context on SIGINT or SIGTERM (with cause
// errTerminated). The command then stops at its next check and exits 130
// (SIGINT) or 143 (SIGTERM); a second signal, or a command still running
// a.drain after the first (blocked in a system call), exits at once with
// that code.
func onSignal(a *app) context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		c, cause := errdef.ExitCancelled, context.Canceled
		if sig == syscall.SIGTERM {
			c, cause = errdef.ExitTerminated, errTerminated
		}
		cancel(cause)
		select {
		case <-sigs:
		case <-time.After(a.drain):
		}
		fmt.Fprintf(a.stderr, "offkit: %v: cancelled\n", sig)
		os.Exit(c)
	}()
	return ctx
}

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "offkit",
		Short:         "Carry software into air-gapped sites and keep it trustworthy there",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			opts := &slog.HandlerOptions{Level: slog.LevelInfo}
			if a.json {
				a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
			} else {
				a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
			}
		},
	}
	root.PersistentFlags().BoolVar(&a.json, "json", false, "machine-readable output on stdout")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%s%w: %w", commandPrefix(cmd), err, errdef.ErrInvalid)
	})
	root.AddCommand(
		a.buildCmd(), a.signCmd(), a.inspectCmd(), a.verifyCmd(), a.installCmd(),
		a.statusCmd(), a.rollbackCmd(), a.keyCmd(),
		a.pushCmd(),
	)
	root.AddCommand(a.debugCmd())
	root.AddCommand(a.mirrorCmd())
	root.AddCommand(a.authorityCmd())
	root.AddCommand(a.serveCmd(), a.versionCmd())
	// cobra's own help and completion commands too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	invalidArgs(root)
	return root
}

// invalidArgs makes every wrong number of arguments and every unknown
// subcommand under c an invalid command line (exit 11): cobra's own errors
// wrap no sentinel.
func invalidArgs(c *cobra.Command) {
	check := c.Args
	if check == nil {
		// cobra's default: a command with subcommands takes none of its own.
		check = func(cmd *cobra.Command, args []string) error {
			if cmd.HasSubCommands() && len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		}
	}
	if !c.Runnable() {
		// Runnable, so that cobra checks its arguments instead of
		// printing help for an unknown subcommand.
		c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return fmt.Errorf("%s%w: %w", commandPrefix(cmd), err, errdef.ErrInvalid)
		}
		return nil
	}
	for _, sub := range c.Commands() {
		invalidArgs(sub)
	}
}

// commandPrefix is "verify: " for offkit verify, "" for offkit itself (every
// message already starts with "offkit: ").
func commandPrefix(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return ""
	}
	p := cmd.CommandPath()
	return p[strings.IndexByte(p, ' ')+1:] + ": "
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

// progress returns a progress callback and the function to call with the
// command's error when it ends: a bar on a terminal, a log line every 10%
// otherwise, nothing with --json. The bar goes to 100% only on success; on a
// failure or cancellation it stops where it was and says so, and the error
// follows.
func (a *app) progress(what string) (func(done, total int64), func(error)) {
	if a.json {
		return nil, func(error) {}
	}
	var done, total int64
	stopped := func(err error) bool {
		if err == nil || total == 0 {
			return false
		}
		pct := done * 100 / total
		if a.tty {
			fmt.Fprintf(a.stderr, "%s stopped at %d%% (%d of %d bytes)\n", what, pct, done, total)
		} else {
			a.log.Info(what+" stopped", "percent", pct, "bytes", done, "total", total)
		}
		return true
	}
	if a.tty {
		// The bar draws at most every barInterval (it draws on every call:
		// no throttle of its own), so that the last state can be drawn
		// at once when the command fails.
		var bar *progressbar.ProgressBar
		var drawn time.Time
		return func(d, t int64) {
				done, total = d, t
				if bar == nil {
					bar = a.newBar(t, what)
				}
				if d < t && time.Since(drawn) < barInterval {
					return
				}
				drawn = time.Now()
				bar.Set64(d)
			}, func(err error) {
				if bar == nil {
					return
				}
				if err != nil {
					bar.Set64(done)
					bar.Exit()
					stopped(err)
					return
				}
				bar.Finish()
			}
	}
	last := int64(-1)
	return func(d, t int64) {
			done, total = d, t
			if t < 64<<20 {
				return
			}
			pct := d * 100 / t
			if pct/10 != last/10 {
				last = pct
				a.log.Info(what, "percent", pct, "bytes", d, "total", t)
			}
		}, func(err error) {
			if total >= 64<<20 {
				stopped(err)
			}
		}
}

// barInterval is how often a progress bar is drawn at most.
const barInterval = 65 * time.Millisecond

// newBar is progressbar.DefaultBytes writing to a.stderr, drawing on every
// update (progress throttles).
func (a *app) newBar(total int64, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetDescription(what),
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(10),
		progressbar.OptionShowCount(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(a.stderr) }),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionFullWidth(),
		progressbar.OptionSetRenderBlankState(true),
	)
}
