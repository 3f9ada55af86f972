package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/site"
)

// siteKeys returns the trusted keys: --key flags, else ROOT/keys/*.pub.
func siteKeys(root string, keyPaths []string) ([]string, error) {
	if len(keyPaths) > 0 {
		return keyPaths, nil
	}
	found, _ := filepath.Glob(filepath.Join(root, "keys", "*.pub"))
	if len(found) == 0 {
		return nil, fmt.Errorf("no trusted key: pass --key cosign.pub or put keys in %s: %w", filepath.Join(root, "keys"), errdef.ErrSignature)
	}
	return found, nil
}

func (a *app) installCmd() *cobra.Command {
	var root, reason string
	var keyPaths, imageKeyPaths []string
	var dryRun, force bool
	var grace time.Duration
	var keepExports int
	cmd := &cobra.Command{
		Use:   "install K.kit.tar.zst --root ROOT --key cosign.pub [--image-key cosign.pub]",
		Short: "Verify a kit while staging it, then activate it atomically as a new generation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return usageError("--root is required")
			}
			paths, err := siteKeys(root, keyPaths)
			if err != nil {
				return err
			}
			keys, err := loadPublicKeys(paths)
			if err != nil {
				return err
			}
			imageKeys, err := loadPublicKeys(imageKeyPaths)
			if err != nil {
				return err
			}
			if keepExports < 1 {
				return usageError("--keep-exports must be at least 1")
			}
			if grace == 0 {
				grace = -1 // at once: zero means the default in site.InstallOptions
			}
			var s *site.Site
			if dryRun {
				// No lock, nothing written, and a first install's root
				// need not exist.
				s, err = site.OpenReadOnly(root, true)
			} else {
				s, err = site.Open(root, true)
			}
			if err != nil {
				return err
			}
			defer s.Close()
			p, done := a.progress("installing")
			res, err := s.Install(cmd.Context(), args[0], site.InstallOptions{
				Keys: keys, ImageKeys: imageKeys, DryRun: dryRun, Force: force, Reason: reason, Now: a.now(), Grace: grace, KeepExports: keepExports, Progress: p,
			})
			done(err)
			if err != nil {
				return err
			}
			if !res.DryRun && !res.AlreadyActive {
				// The kit is installed and stays so; a snapshot that fails
				// to import is a warning and an audit.log line (serve's
				// /readyz tells when the cache it left is not usable).
				if ierr := a.importAuthority(s, root, res); ierr != nil {
					a.log.Warn("installed, but an Authority snapshot was not imported", "error", ierr)
				}
			}
			return a.emit(res, func(w io.Writer) {
				switch {
				case res.AlreadyActive:
					fmt.Fprintf(w, "%s %s is already active (generation %d): nothing to do\n", res.Name, res.Version, res.Generation)
				case res.DryRun:
					fmt.Fprintf(w, "dry run: %s %s verified (%d entries, %d bytes); nothing written\n", res.Name, res.Version, res.Entries, res.Bytes)
					if res.RollForward {
						fmt.Fprintf(w, "it would return to the version the site rolled back from\n")
					}
				default:
					from := "new"
					if res.Previous != "" {
						from = "was " + res.Previous
					}
					fmt.Fprintf(w, "installed %s %s (%s) as generation %d: %d entries, %d bytes, %d new blobs, %d shared\n",
						res.Name, res.Version, from, res.Generation, res.Entries, res.Bytes, res.BlobsNew, res.BlobsShared)
					if res.Forced {
						fmt.Fprintf(w, "forced activation recorded in %s\n", filepath.Join(root, "audit.log"))
					}
					if res.RollForward {
						fmt.Fprintf(w, "rolled forward to the kit that set the high-water mark\n")
					}
				}
			})
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "site root")
	cmd.Flags().StringArrayVar(&keyPaths, "key", nil, "trusted cosign public key (repeatable; default ROOT/keys/*.pub)")
	cmd.Flags().StringArrayVar(&imageKeyPaths, "image-key", nil, "trusted cosign public key of the images' signatures (repeatable); every image must be signed by one")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "verify and report without writing")
	cmd.Flags().BoolVar(&force, "force-activate", false, "activate a version that is not newer than the installed one")
	cmd.Flags().StringVar(&reason, "force-reason", "", "why (recorded in audit.log; required with --force-activate)")
	cmd.Flags().DurationVar(&grace, "grace", site.DefaultGrace, "keep a generation that stopped being current this long for readers before removing it; 0: at once (the one replaced is always kept for rollback)")
	cmd.Flags().IntVar(&keepExports, "keep-exports", site.DefaultKeepExports, "feed-mirror exports kept per kind: the active kits' always, then those a kit's new version dropped, newest first, up to this many (1: none)")
	return cmd
}

type kitStatus struct {
	site.KitState
	Age     string `json:"age"`
	Stale   bool   `json:"stale"`
	Expired bool   `json:"expired"`
}

// exportStatus is one feed-mirror export in `offkit status`.
type exportStatus struct {
	Kind        string   `json:"kind"`
	ExportID    string   `json:"exportId"`
	Kit         string   `json:"kit"`
	KitVersion  string   `json:"kitVersion"`
	Domains     []string `json:"domains"`
	Created     string   `json:"created,omitempty"`
	GeneratedAt string   `json:"generatedAt,omitempty"`
	// Age is how old the export is (from created, else generatedAt);
	// absent when it records neither.
	Age        string `json:"age,omitempty"`
	AgeSeconds *int64 `json:"ageSeconds,omitempty"`
	Retained   bool   `json:"retained"`
	Latest     bool   `json:"latest"`
}

type siteStatus struct {
	Root               string         `json:"root"`
	Generation         int            `json:"generation"`
	PreviousGeneration int            `json:"previousGeneration,omitempty"`
	Kits               []kitStatus    `json:"kits"`
	Exports            []exportStatus `json:"exports"`
	Quarantined        int            `json:"quarantined"`
	// InstallInProgress: an install or rollback holds the site lock.
	InstallInProgress bool `json:"installInProgress"`
	// Interrupted: staging holds the work of a command cut short.
	Interrupted bool `json:"interrupted,omitempty"`
}

func (a *app) statusCmd() *cobra.Command {
	var root string
	var check bool
	cmd := &cobra.Command{
		Use:   "status --root ROOT",
		Short: "Show the active kits, their versions, age and staleness",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return usageError("--root is required")
			}
			// A snapshot: no lock, no recovery, nothing written.
			s, err := site.OpenReadOnly(root, false)
			if err != nil {
				return err
			}
			snap, err := s.Snapshot()
			if err != nil {
				return err
			}
			st := snap.State
			now := a.now()
			out := siteStatus{Root: root, Generation: snap.Generation, PreviousGeneration: snap.PreviousGeneration, Quarantined: snap.Quarantined,
				InstallInProgress: snap.Busy, Interrupted: snap.Interrupted, Kits: []kitStatus{}, Exports: []exportStatus{}}
			for _, k := range st.Kits {
				ks := kitStatus{KitState: k, Age: humanAge(k.Age(now)), Stale: k.Stale(now), Expired: k.Expired(now)}
				out.Kits = append(out.Kits, ks)
			}
			for _, x := range snap.Exports.Exports {
				es := exportStatus{Kind: x.Kind, ExportID: x.ExportID, Kit: x.Kit, KitVersion: x.KitVersion, Domains: orEmpty(x.Domains),
					Created: x.Created, GeneratedAt: x.GeneratedAt, Retained: x.Retained, Latest: snap.Exports.Latest[x.Kind] == x.ExportID}
				if age, ok := x.Age(now); ok {
					secs := int64(age / time.Second)
					es.Age, es.AgeSeconds = humanAge(age), &secs
				}
				out.Exports = append(out.Exports, es)
			}
			var expired []string
			if check {
				for _, k := range out.Kits {
					switch {
					case k.Expired:
						expired = append(expired, k.Name+" "+k.Version+" (expired "+k.ExpiresAt.Format(time.RFC3339)+")")
					case k.Stale:
						a.log.Warn("stale kit", "kit", k.Name, "version", k.Version, "age", k.Age, "stalenessWindowHours", k.StalenessWindowHours)
					}
				}
			}
			if len(expired) > 0 {
				err := fmt.Errorf("site %s: active kits have expired: %s: %w", root, strings.Join(expired, ", "), errdef.ErrExpired)
				if a.json {
					return err // the error object is the output
				}
				if perr := a.emit(out, func(w io.Writer) { printStatus(w, root, out) }); perr != nil {
					return perr
				}
				return err
			}
			return a.emit(out, func(w io.Writer) { printStatus(w, root, out) })
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "site root")
	cmd.Flags().BoolVar(&check, "check", false, "exit 9 when an active kit has expired; warn about stale kits")
	return cmd
}

// printStatus writes status's text output.
func printStatus(w io.Writer, root string, out siteStatus) {
	fmt.Fprintf(w, "site %s: generation %d", root, out.Generation)
	if out.PreviousGeneration > 0 {
		fmt.Fprintf(w, " (rollback to %d available)", out.PreviousGeneration)
	}
	fmt.Fprintf(w, ", %d quarantined\n", out.Quarantined)
	if out.InstallInProgress {
		fmt.Fprintln(w, "an install or rollback is in progress: this is what is served until it switches")
	} else if out.Interrupted {
		fmt.Fprintln(w, "staging holds the work of an interrupted install: the next install or rollback discards it")
	}
	if len(out.Kits) == 0 {
		fmt.Fprintln(w, "no kits installed")
	}
	for _, k := range out.Kits {
		flag := "fresh"
		if k.Expired {
			flag = "EXPIRED"
		} else if k.Stale {
			flag = "STALE"
		}
		fmt.Fprintf(w, "  %-24s %-12s %s  age %-10s %s  %d entries, %d images\n", k.Name, k.Version, k.ManifestDigest[:19], k.Age, flag, k.Entries, k.Images)
	}
	if len(out.Exports) > 0 {
		fmt.Fprintln(w, "feed-mirror exports:")
	}
	for _, x := range out.Exports {
		age := x.Age
		if age == "" {
			age = "unknown"
		}
		var flags string
		if x.Latest {
			flags += " latest"
		}
		if x.Retained {
			flags += " retained"
		}
		fmt.Fprintf(w, "  %-9s %-20s age %-10s %s %s  domains %s%s\n", x.Kind, x.ExportID, age, x.Kit, x.KitVersion, strings.Join(x.Domains, ","), flags)
	}
}

func (a *app) rollbackCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "rollback --root ROOT",
		Short: "Switch back to the previous generation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return usageError("--root is required")
			}
			s, err := site.Open(root, false)
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := s.Rollback(site.RollbackOptions{Now: a.now()})
			if err != nil {
				return err
			}
			out := rollbackOutput{Root: root, Generation: st.Generation, Kits: orEmpty(st.Kits)}
			return a.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "rolled back to generation %d\n", st.Generation)
				for _, k := range st.Kits {
					fmt.Fprintf(w, "  %s %s\n", k.Name, k.Version)
				}
			})
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "site root")
	return cmd
}

// humanAge writes an age as days and hours ("12d 4h"), or hours and minutes
// under a day.
func humanAge(d time.Duration) string {
	if d < 0 {
		return "in the future"
	}
	if d < 24*time.Hour {
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}
