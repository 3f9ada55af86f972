package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/limit"
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/kitfile"
	"github.com/offkit/offkit/manifest"
	"github.com/offkit/offkit/sign"
	"github.com/offkit/offkit/verify"
)

// MaxKeyFile bounds a key file read from disk.
const MaxKeyFile = 64 << 10

func readKeyFile(path string) ([]byte, error) {
	b, err := limit.ReadFile(path, MaxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("key %w", err)
	}
	return b, nil
}

func loadPublicKeys(paths []string) ([]*sign.PublicKey, error) {
	var keys []*sign.PublicKey
	for _, p := range paths {
		b, err := readKeyFile(p)
		if err != nil {
			return nil, err
		}
		k, err := sign.LoadPublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", p, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// password returns COSIGN_PASSWORD, or asks on the terminal.
func (a *app) password(confirm bool) ([]byte, error) {
	if pw, ok := os.LookupEnv("COSIGN_PASSWORD"); ok {
		return []byte(pw), nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, usageError("no key password: set COSIGN_PASSWORD (standard input is not a terminal)")
	}
	fmt.Fprint(a.stderr, "Enter password for private key: ")
	pw, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(a.stderr, "Enter password for private key again: ")
		again, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return nil, err
		}
		if string(again) != string(pw) {
			return nil, usageError("passwords do not match")
		}
	}
	return pw, nil
}

func (a *app) loadPrivateKey(path string) (*sign.PrivateKey, error) {
	decrypt, err := a.privateKey(path)
	if err != nil {
		return nil, err
	}
	return decrypt()
}

// privateKey reads the key file at path and its password now, and returns
// the function that decrypts it (scrypt: about 0.2 s), which build runs
// while it collects the sources.
func (a *app) privateKey(path string) (func() (*sign.PrivateKey, error), error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	pw, err := a.password(false)
	if err != nil {
		return nil, err
	}
	return func() (*sign.PrivateKey, error) {
		k, err := sign.LoadPrivateKey(b, pw)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		return k, nil
	}, nil
}

func (a *app) buildCmd() *cobra.Command {
	var specPath, outDir, keyPath string
	var plainHTTP, allowExpired, overwrite bool
	var concurrency int
	cmd := &cobra.Command{
		Use:   "build -f kit.yaml [-o DIR] [--key cosign.key]",
		Short: "Collect what kit.yaml names into a signed NAME-VERSION.kit.tar.zst",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := limit.ReadFile(specPath, manifest.MaxSpecSize)
			if err != nil {
				return fmt.Errorf("spec %w", err)
			}
			spec, err := manifest.ParseSpec(specPath, b)
			if err != nil {
				return err
			}
			if spec.ExpiresAt != nil && !a.now().Before(*spec.ExpiresAt) {
				if !allowExpired {
					return fmt.Errorf("spec %s: /expiresAt %s is already past: every site would refuse the kit (--allow-expired builds it anyway): %w",
						specPath, spec.ExpiresAt.Format(time.RFC3339), errdef.ErrExpired)
				}
				a.log.Warn("building a kit that has already expired", "expiresAt", spec.ExpiresAt.Format(time.RFC3339))
			}
			opts := kit.BuildOptions{
				Dir:         filepath.Dir(specPath),
				OutDir:      outDir,
				PlainHTTP:   plainHTTP,
				Concurrency: concurrency,
				Builder:     manifest.Builder{Name: "offkit", Version: version},
				Log:         a.log,
				Now:         a.now,
			}
			if epoch, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok {
				sec, err := strconv.ParseInt(epoch, 10, 64)
				if err != nil || sec < 0 {
					return usageError("SOURCE_DATE_EPOCH %q is not a number of seconds", epoch)
				}
				t := time.Unix(sec, 0).UTC()
				opts.SourceDateEpoch = &t
			}
			if keyPath != "" {
				if opts.LoadKey, err = a.privateKey(keyPath); err != nil {
					return err
				}
			}
			// A kit of that name exists: build beside it, then keep it
			// (same bytes), replace it (--overwrite) or refuse.
			final := filepath.Join(outDir, (&manifest.Manifest{Name: spec.Name, Version: spec.Version}).FileName())
			var staging string
			if _, err := os.Lstat(final); err == nil {
				if staging, err = os.MkdirTemp(outDir, ".offkit-build-"); err != nil {
					return err
				}
				defer os.RemoveAll(staging)
				opts.OutDir = staging
			}
			var done func(error)
			opts.Progress, done = a.progress("packing")
			res, err := kit.Build(cmd.Context(), spec, opts)
			done(err)
			if err != nil {
				return err
			}
			if staging != "" {
				if err := publishBuilt(res, final, overwrite); err != nil {
					return err
				}
			}
			return a.emit(newBuildOutput(res), func(w io.Writer) {
				fmt.Fprintf(w, "built %s (%d bytes, %d entries)\n", res.Path, res.Size, len(res.Manifest.Entries))
				fmt.Fprintf(w, "manifest %s\n", res.ManifestDigest)
				if res.SignaturePath != "" {
					fmt.Fprintf(w, "signed  %s (key %s)\n", res.SignaturePath, res.Manifest.Signer.KeyID)
				} else {
					fmt.Fprintln(w, "unsigned: no --key given")
				}
			})
		},
	}
	cmd.Flags().StringVarP(&specPath, "file", "f", "kit.yaml", "kit spec")
	cmd.Flags().StringVarP(&outDir, "output", "o", ".", "output folder")
	cmd.Flags().StringVar(&keyPath, "key", "", "cosign private key (password from COSIGN_PASSWORD or a prompt)")
	cmd.Flags().BoolVar(&plainHTTP, "plain-http", false, "pull images over plain http (loopback registries)")
	cmd.Flags().BoolVar(&allowExpired, "allow-expired", false, "build a kit whose expiresAt is already past (with a warning)")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace an existing kit file of the same name whose bytes differ")
	cmd.Flags().IntVar(&concurrency, "concurrency", 0, "compression goroutines (0: one per core; never changes the bytes)")
	return cmd
}

// publishBuilt moves the kit res built in a staging folder to final, where a
// kit file exists: the same bytes keep it, other bytes replace it only with
// overwrite (which skips the comparison), else the build is refused (exit
// 11) naming it. res then names
// the published files.
func publishBuilt(res *kit.BuildResult, final string, overwrite bool) error {
	if !overwrite {
		same, err := sameBytes(res.Path, final)
		if err != nil {
			return err
		}
		if !same {
			return usageError("%s exists with other bytes (another build of %s %s): pass --overwrite to replace it", final, res.Manifest.Name, res.Manifest.Version)
		}
	}
	if err := os.Rename(res.Path, final); err != nil {
		return err
	}
	res.Path = final
	if res.SignaturePath == "" {
		if err := os.Remove(final + ".sig"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.Rename(res.SignaturePath, final+".sig"); err != nil {
		return err
	}
	res.SignaturePath = final + ".sig"
	return nil
}

// sameBytes reports whether the files a and b hold the same bytes.
func sameBytes(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	sa, err := fa.Stat()
	if err != nil {
		return false, err
	}
	sb, err := fb.Stat()
	if err != nil {
		return false, err
	}
	if !sb.Mode().IsRegular() {
		return false, fmt.Errorf("%s: not a regular file: %w", b, errdef.ErrInvalid)
	}
	if sa.Size() != sb.Size() {
		return false, nil
	}
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if erra == io.EOF || erra == io.ErrUnexpectedEOF {
			return errb == io.EOF || errb == io.ErrUnexpectedEOF, nil
		}
		if erra != nil {
			return false, erra
		}
		if errb != nil {
			return false, errb
		}
	}
}

func (a *app) signCmd() *cobra.Command {
	var keyPath string
	var replace bool
	cmd := &cobra.Command{
		Use:   "sign K.kit.tar.zst --key cosign.key",
		Short: "Sign a kit: its manifest inside and the whole file beside it (K.sig)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				return usageError("--key is required")
			}
			key, err := a.loadPrivateKey(keyPath)
			if err != nil {
				return err
			}
			if !replace {
				if err := sameSigner(args[0], key.Public().KeyID()); err != nil {
					return err
				}
			}
			res, err := kit.Sign(args[0], key)
			if err != nil {
				return err
			}
			return a.emit(signOutput{Path: args[0], SignResult: res}, func(w io.Writer) {
				fmt.Fprintf(w, "signed %s with key %s\nmanifest %s\nsignature %s\n", args[0], res.KeyID, res.ManifestDigest, res.SignaturePath)
			})
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "cosign private key")
	cmd.Flags().BoolVar(&replace, "replace-signer", false, "sign a kit that another key signed, replacing its signer")
	return cmd
}

// sameSigner returns an error (exit 11) when the kit at path is signed by a
// key other than keyID: signing it again would silently replace its signer.
func sameSigner(path, keyID string) error {
	head, err := kitfile.ReadHead(path)
	if err != nil {
		return err
	}
	m, err := manifest.Parse(head.ManifestBytes)
	if err != nil {
		return err
	}
	if m.Signer != nil && m.Signer.KeyID != keyID {
		return usageError("kit %s is signed by %s: pass --replace-signer to sign it with %s instead", path, m.Signer.KeyID, keyID)
	}
	return nil
}

func (a *app) inspectCmd() *cobra.Command {
	var keyPaths []string
	cmd := &cobra.Command{
		Use:   "inspect K.kit.tar.zst [--key cosign.pub]",
		Short: "Show a kit's manifest, signer and contents, reading only its head",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			head, err := kitfile.ReadHead(args[0])
			if err != nil {
				return err
			}
			sigState := "absent"
			if head.Signature != nil {
				sigState = "present, not checked (no --key)"
			}
			if len(keyPaths) > 0 {
				keys, err := loadPublicKeys(keyPaths)
				if err != nil {
					return err
				}
				_, k, err := verify.Head(head, keys)
				if err != nil {
					return fmt.Errorf("kit %s: %w", args[0], err)
				}
				sigState = "verified with " + k.KeyID()
			}
			m, err := manifest.Parse(head.ManifestBytes)
			if err != nil {
				return err
			}
			out := summarize(m, head.ManifestBytes)
			out.Signature = sigState
			return a.emit(out, func(w io.Writer) { out.print(w) })
		},
	}
	cmd.Flags().StringArrayVar(&keyPaths, "key", nil, "trusted cosign public key (repeatable)")
	return cmd
}

type roleSummary struct {
	Role    manifest.Role `json:"role"`
	Entries int           `json:"entries"`
	Bytes   int64         `json:"bytes"`
}

type kitSummary struct {
	Name           string               `json:"name"`
	Version        string               `json:"version"`
	ManifestDigest string               `json:"manifestDigest"`
	Signer         string               `json:"signer"`
	Signature      string               `json:"signature"`
	CreatedAt      time.Time            `json:"createdAt"`
	ExpiresAt      *time.Time           `json:"expiresAt,omitempty"`
	Builder        manifest.Builder     `json:"builder"`
	Roles          []roleSummary        `json:"roles"`
	Images         []manifest.Image     `json:"images"`
	Mirror         []manifest.Mirror    `json:"mirror,omitempty"`
	Entries        int                  `json:"entries"`
	Bytes          int64                `json:"bytes"`
	Compression    manifest.Compression `json:"compression"`
}

func summarize(m *manifest.Manifest, raw []byte) *kitSummary {
	s := &kitSummary{
		Name: m.Name, Version: m.Version, ManifestDigest: manifest.Digest(raw),
		CreatedAt: m.CreatedAt, ExpiresAt: m.ExpiresAt, Builder: m.Builder, Images: orEmpty(m.Images), Mirror: m.Mirror, Roles: []roleSummary{},
		Entries: len(m.Entries), Bytes: m.TotalSize(), Compression: m.Compression, Signer: "(unsigned)",
	}
	if m.Signer != nil {
		s.Signer = m.Signer.KeyID
	}
	by := map[manifest.Role]*roleSummary{}
	for _, e := range m.Entries {
		r := by[e.Role]
		if r == nil {
			r = &roleSummary{Role: e.Role}
			by[e.Role] = r
		}
		r.Entries++
		r.Bytes += e.Size
	}
	for _, r := range by {
		s.Roles = append(s.Roles, *r)
	}
	sort.Slice(s.Roles, func(i, j int) bool { return s.Roles[i].Role < s.Roles[j].Role })
	return s
}

func (s *kitSummary) print(w io.Writer) {
	fmt.Fprintf(w, "kit        %s %s\n", s.Name, s.Version)
	fmt.Fprintf(w, "manifest   %s\n", s.ManifestDigest)
	fmt.Fprintf(w, "signer     %s\n", s.Signer)
	fmt.Fprintf(w, "signature  %s\n", s.Signature)
	fmt.Fprintf(w, "created    %s\n", s.CreatedAt.Format(time.RFC3339))
	if s.ExpiresAt != nil {
		fmt.Fprintf(w, "expires    %s\n", s.ExpiresAt.Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "expires    never\n")
	}
	fmt.Fprintf(w, "builder    %s %s, zstd level %d, frames of %d bytes\n", s.Builder.Name, s.Builder.Version, s.Compression.Level, s.Compression.FrameSize)
	fmt.Fprintf(w, "contents   %d entries, %d bytes\n", s.Entries, s.Bytes)
	for _, r := range s.Roles {
		fmt.Fprintf(w, "  %-12s %6d entries %14d bytes\n", r.Role, r.Entries, r.Bytes)
	}
	for _, im := range s.Images {
		fmt.Fprintf(w, "image      %s@%s %v\n", im.Reference, im.Digest, im.Platforms)
		for _, sb := range im.SignedBy {
			fmt.Fprintf(w, "  signed by %s\n", sb.KeyID)
		}
	}
	for _, mi := range s.Mirror {
		fmt.Fprintf(w, "mirror     %s %s %v\n", mi.Kind, mi.ExportID, mi.Domains)
		for _, f := range mi.Files {
			fmt.Fprintf(w, "  %s: %s %s by %s\n", strings.TrimPrefix(f.Path, manifest.MirrorPrefix(mi.Kind, mi.ExportID)), f.Signature.Kind, f.Signature.Alg, f.Signature.KeyID)
		}
	}
}

func (a *app) verifyCmd() *cobra.Command {
	var keyPaths, imageKeyPaths []string
	var root string
	cmd := &cobra.Command{
		Use:   "verify K.kit.tar.zst --key cosign.pub [--image-key cosign.pub] | verify --root ROOT",
		Short: "Check a kit's signature and every byte, in one streaming pass; writes nothing. With --root: check every installed byte of a site against its manifests",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case root != "" && len(args) > 0:
				return usageError("verify takes a kit or --root ROOT, not both")
			case root != "":
				if len(keyPaths) > 0 || len(imageKeyPaths) > 0 {
					return usageError("verify --root checks installed bytes against the installed manifests: it takes no --key or --image-key")
				}
				return a.siteVerify(cmd.Context(), root)
			case len(args) == 0:
				return usageError("verify needs a kit (K.kit.tar.zst) or --root ROOT")
			}
			if len(keyPaths) == 0 {
				return fmt.Errorf("no trusted key: pass --key cosign.pub: %w", errdef.ErrSignature)
			}
			keys, err := loadPublicKeys(keyPaths)
			if err != nil {
				return err
			}
			imageKeys, err := loadPublicKeys(imageKeyPaths)
			if err != nil {
				return err
			}
			p, done := a.progress("verifying")
			res, err := verify.File(cmd.Context(), args[0], verify.Options{Keys: keys, ImageKeys: imageKeys, Progress: p, Now: a.now()})
			done(err)
			if err != nil {
				return err
			}
			out := verifyOutput{
				Kit: args[0], Name: res.Manifest.Name, Version: res.Manifest.Version,
				ManifestDigest: res.ManifestDigest, Signer: res.Signer.KeyID(),
				FileSignature: res.FileSignature, Entries: res.Entries, Bytes: res.Bytes,
				Seekable: res.Seekable, Verified: true, SignedImages: orEmpty(res.SignedImages),
			}
			return a.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "verified %s: %s %s\n", args[0], res.Manifest.Name, res.Manifest.Version)
				fmt.Fprintf(w, "  manifest  %s, signed by %s\n", res.ManifestDigest, res.Signer.KeyID())
				fmt.Fprintf(w, "  entries   %d, %d bytes, every sha256 and size matches\n", res.Entries, res.Bytes)
				fmt.Fprintf(w, "  file sig  %s\n", res.FileSignature)
				printSignedImages(w, res.SignedImages, len(imageKeys) > 0)
			})
		},
	}
	cmd.Flags().StringArrayVar(&keyPaths, "key", nil, "trusted cosign public key (repeatable)")
	cmd.Flags().StringArrayVar(&imageKeyPaths, "image-key", nil, "trusted cosign public key of the images' signatures (repeatable); every image must be signed by one")
	cmd.Flags().StringVar(&root, "root", "", "site root: check every installed file and blob against the active kits' manifests instead of a kit")
	return cmd
}

// printSignedImages writes one line per image whose cosign signature was
// checked again.
func printSignedImages(w io.Writer, imgs []verify.SignedImage, trusted bool) {
	for _, si := range imgs {
		if trusted {
			fmt.Fprintf(w, "  image     %s signed by trusted key %s\n", si.Reference, si.TrustedKey)
		} else {
			fmt.Fprintf(w, "  image     %s signed by %s (recorded in the kit; pass --image-key to require a trusted key)\n", si.Reference, si.KeyID)
		}
	}
}

func (a *app) keyCmd() *cobra.Command {
	key := &cobra.Command{Use: "key", Short: "Manage signing keys"}
	var prefix string
	gen := &cobra.Command{
		Use:   "generate [--output-key-prefix cosign]",
		Short: "Generate a cosign-compatible key pair (PREFIX.key, PREFIX.pub)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := a.password(true)
			if err != nil {
				return err
			}
			priv, pub, err := sign.GenerateKeyPair(pw)
			if err != nil {
				return err
			}
			keyFile, pubFile := prefix+".key", prefix+".pub"
			if err := writeNew(keyFile, priv, 0o600); err != nil {
				return err
			}
			if err := writeNew(pubFile, pub, 0o644); err != nil {
				os.Remove(keyFile)
				return err
			}
			pk, err := sign.LoadPublicKey(pub)
			if err != nil {
				return err
			}
			out := keyOutput{PrivateKey: keyFile, PublicKey: pubFile, KeyID: pk.KeyID()}
			return a.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "Private key written to %s\nPublic key written to %s\nKey id %s\n", keyFile, pubFile, pk.KeyID())
			})
		},
	}
	gen.Flags().StringVar(&prefix, "output-key-prefix", "cosign", "file name prefix of the key pair")
	key.AddCommand(gen)
	return key
}

// writeNew creates path with data, refusing (exit 11) to replace a file that
// exists: O_EXCL, so that no check-then-write race can overwrite a key.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, os.ErrExist) {
		return usageError("%s exists: refusing to overwrite a key", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
