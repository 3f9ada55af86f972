package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/offkit/offkit/debugstore"
	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/plainfile"
)

// buildIDOutput is one file of `offkit debug buildid --json`
// (schemas/output/debug-buildid.schema.json).
type buildIDOutput struct {
	File string `json:"file"`
	Pid  int    `json:"pid,omitempty"`
	// ID is BuildID when the file has a GNU build id note, else FallbackID.
	ID         string `json:"id"`
	HasNote    bool   `json:"hasNote"`
	BuildID    string `json:"buildId,omitempty"`
	GoBuildID  string `json:"goBuildId,omitempty"`
	FallbackID string `json:"fallbackId,omitempty"`
	Class      int    `json:"class"`
	ByteOrder  string `json:"byteOrder"`
	Machine    string `json:"machine"`
}

func (a *app) debugCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "debug",
		Short: "Debug symbols: build ids, the installed .build-id store",
	}
	c.AddCommand(a.debugBuildIDCmd(), a.debugFindCmd(), a.debugFetchCmd())
	return c
}

func (a *app) debugBuildIDCmd() *cobra.Command {
	var pids []int
	c := &cobra.Command{
		Use:   "buildid [FILE...] [--pid N]",
		Short: "Print the GNU build id (and Go build id) of ELF files or running processes",
		Long: `Print one line per file: its GNU build id (NT_GNU_BUILD_ID, lowercase hex) and
its name, and its Go build id when it has one. A file without a build id note
is printed with "text-sha256:" and the SHA-256 of its .text section instead,
marked "(no build id note)". --pid N reads /proc/N/exe.

Exit codes: 1 a file or process not found, 11 not ELF or malformed, 12
unreadable; with several files, every file is read and the first failure
decides.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			files := append([]string(nil), args...)
			for _, p := range pids {
				if p <= 0 {
					return usageError("debug buildid: --pid %d: not a process id", p)
				}
				files = append(files, "/proc/"+strconv.Itoa(p)+"/exe")
			}
			if len(files) == 0 {
				return usageError("debug buildid: name a FILE or --pid")
			}
			out := make([]buildIDOutput, 0, len(files))
			var errs []error
			for i, name := range files {
				o, err := readBuildID(name)
				if err != nil {
					if i >= len(args) {
						err = fmt.Errorf("process %d: %w", pids[i-len(args)], err)
					}
					errs = append(errs, err)
					if !a.json && len(files) > 1 {
						fmt.Fprintf(a.stderr, "offkit: debug buildid: %v\n", err)
					}
					continue
				}
				if i >= len(args) {
					o.Pid = pids[i-len(args)]
				}
				out = append(out, o)
			}
			if len(errs) > 0 {
				// Text: the good lines, each failure on stderr, and a
				// summary; --json: the error object alone, naming them all.
				// The exit code is the first that applies of all failures
				// (docs/exit-codes.md).
				if a.json {
					return errors.Join(errs...)
				}
				for _, o := range out {
					printBuildID(a.stdout, o)
				}
				return &buildIDFailures{errs: errs, files: len(files)}
			}
			return a.emit(out, func(w io.Writer) {
				for _, o := range out {
					printBuildID(w, o)
				}
			})
		},
	}
	c.Flags().IntSliceVar(&pids, "pid", nil, "read the executable of process `N` (/proc/N/exe); repeatable")
	return c
}

// buildIDFailures is the files that debug buildid could not read; each was
// printed as it failed (when there were several files).
type buildIDFailures struct {
	errs  []error
	files int
}

func (e *buildIDFailures) Error() string {
	if e.files == 1 {
		return e.errs[0].Error()
	}
	return fmt.Sprintf("%d of %d files failed", len(e.errs), e.files)
}

func (e *buildIDFailures) Unwrap() []error { return e.errs }

// printBuildID prints `<id> <file>`, then the Go build id or the no-note
// marker.
func printBuildID(w io.Writer, o buildIDOutput) {
	fmt.Fprintf(w, "%s %s", o.ID, o.File)
	if o.GoBuildID != "" {
		fmt.Fprintf(w, " go:%s", o.GoBuildID)
	}
	if !o.HasNote {
		fmt.Fprint(w, " (no build id note)")
	}
	fmt.Fprintln(w)
}

// readBuildID reads the build ids of the file name; a file that does not
// exist is errdef.ErrNotFound, one that cannot be read errdef.ErrIO, one
// that is not a regular file or not ELF errdef.ErrInvalid.
func readBuildID(name string) (buildIDOutput, error) {
	// A named pipe is refused at once, not waited on.
	fh, st, err := plainfile.OpenRegular(name)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return buildIDOutput{}, fmt.Errorf("%s: %w", name, errdef.ErrNotFound)
		case errors.Is(err, errdef.ErrInvalid):
			return buildIDOutput{}, err
		}
		return buildIDOutput{}, fmt.Errorf("%w: %w", errdef.ErrIO, err)
	}
	defer fh.Close()
	id, err := debugstore.ReadBuildID(fh, st.Size())
	if err != nil {
		return buildIDOutput{}, fmt.Errorf("%s: %w", name, err)
	}
	if id.String() == "" {
		if id.Type == elf.ET_CORE {
			return buildIDOutput{}, fmt.Errorf("%s: a core file: its notes carry no build id (the executable's is in its memory: eu-unstrip -n --core %s): %w", name, name, errdef.ErrNotFound)
		}
		return buildIDOutput{}, fmt.Errorf("%s: no build id note and no .text section to name it by: %w", name, errdef.ErrNotFound)
	}
	return buildIDOutput{
		File: name, ID: id.String(), HasNote: id.GNU != "", BuildID: id.GNU, GoBuildID: id.Go,
		FallbackID: id.TextSHA256, Class: id.Class, ByteOrder: id.ByteOrder, Machine: id.Machine.String(),
	}, nil
}
