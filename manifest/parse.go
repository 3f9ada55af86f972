package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/offkit/offkit/schemas"
)

// Parse decodes and validates manifest bytes (see the package doc for the
// rules). Parse does not check a signature: callers verify the bytes first.
//
// The bytes of a valid manifest are decoded once, into the Go types, and
// compared with their re-encoding as it is produced (no second copy). The schema's rules for
// entries[] (by far the bulk of a manifest: one per file) are checked in Go
// (checkEntries); the schema itself checks the rest of the document, the
// manifest without its entries, re-encoded: the canonical-form check at the
// end makes that the document given. FuzzParse and TestParseAgreesWithSchema
// hold Parse to the whole schema.
func Parse(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, invalid("offkit/manifest.json", "%d bytes, over the limit of %d", len(b), MaxManifestSize)
	}
	// json.Unmarshal decodes b where it lies (a json.Decoder would first
	// copy it whole into its buffer). What it accepts and the strict
	// decoder would refuse (an unknown field) does not re-encode to b, so
	// the canonical check refuses it; a manifest refused here is parsed
	// again by parseStrict, whose errors name the fault.
	var m Manifest
	if json.Unmarshal(b, &m) == nil && m.checkEntries() == nil && m.checkSchema() == nil && m.Validate() == nil && m.encodesTo(b) {
		return &m, nil
	}
	return parseStrict(b)
}

// parseStrict is Parse step by step, for its errors.
func parseStrict(b []byte) (*Manifest, error) {
	var m Manifest
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return nil, schemaOr(b, "malformed JSON or a field of the wrong type or name: %v", err)
	}
	if d.More() {
		return nil, schemaOr(b, "trailing data after the JSON document")
	}
	if err := m.checkEntries(); err != nil {
		return nil, err
	}
	if err := m.checkSchema(); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	again, err := m.Encode()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, schemaOr(b, "not in canonical form (key order, indent, escaping or times differ from what offkit writes)")
	}
	return &m, nil
}

// schemaOr is the error for a manifest that the Go types cannot hold as it
// is (it does not decode, or does not re-encode to itself): the schema's,
// which names the field at fault, or else the message given. Only a
// refused manifest is so validated whole.
func schemaOr(b []byte, format string, args ...any) error {
	if ferr := fieldError(schemas.Validate(schemas.Manifest, b)); ferr != nil {
		return ferr
	}
	return invalid("offkit/manifest.json", format, args...)
}

// fieldError is the manifest's error for a schema error that names the
// field at fault (schemas.FieldError), nil for any other.
func fieldError(err error) error {
	var fe *schemas.FieldError
	if errors.As(err, &fe) {
		return invalid("manifest field "+fe.Field, "%s", fe.Message)
	}
	return nil
}

// checkSchema validates m without its entries against the manifest schema.
func (m *Manifest) checkSchema() error {
	rest := *m
	rest.Entries = []Entry{}
	j, err := json.Marshal(&rest)
	if err != nil {
		return invalid("offkit/manifest.json", "%v", err)
	}
	if err := schemas.Validate(schemas.Manifest, j); err != nil {
		if ferr := fieldError(err); ferr != nil {
			return ferr
		}
		return err
	}
	return nil
}

// checkEntries checks the schema's rules for entries[] that decoding and
// Validate do not: sha256 is 64 lowercase hex, role is one of the roles,
// mediaType is at most 255 characters. (Required fields and their types
// are the decoder's and the canonical form's; path, size and the number
// of entries are Validate's, which is stricter.)
func (m *Manifest) checkEntries() error {
	for i := range m.Entries {
		e := &m.Entries[i]
		if !isLowerHex64(e.SHA256) {
			return invalid(fmt.Sprintf("manifest field /entries/%d/sha256", i), "%q is not 64 lowercase hex digits", e.SHA256)
		}
		switch e.Role {
		case RoleImageBlob, RoleImageIndex, RoleRules, RoleDashboard, RoleMirror, RoleDebug, RoleAuthority, RoleFile:
		default:
			return invalid(fmt.Sprintf("manifest field /entries/%d/role", i), "%q is not one of the roles", e.Role)
		}
		if len(e.MediaType) > 255 && utf8.RuneCountInString(e.MediaType) > 255 {
			return invalid(fmt.Sprintf("manifest field /entries/%d/mediaType", i), "over 255 characters")
		}
	}
	return nil
}

// Validate checks the rules that a schema cannot express: safe, sorted,
// unique entry paths, roles that follow from the paths, bounded sizes, and
// no delta fields (delta kits are not built yet, so a kit that names a base
// or leaves entries to one would install without those files).
func (m *Manifest) Validate() error {
	if m.SchemaVersion != SchemaVersion {
		return invalid("schemaVersion", "%d, this offkit reads %d", m.SchemaVersion, SchemaVersion)
	}
	if m.Base != nil {
		return invalid("base", "delta kits are not supported by this offkit")
	}
	if len(m.Entries) > MaxEntries {
		return invalid("entries", "%d entries, over the limit of %d", len(m.Entries), MaxEntries)
	}
	folded := make(map[string]string, len(m.Entries))
	keys := make([]string, len(m.Entries))
	var total int64
	for i, e := range m.Entries {
		// The field is formatted only for an error: on every entry of a
		// large manifest it cost as much as the checks.
		field := func() string { return fmt.Sprintf("entries[%d] %q", i, e.Path) }
		if err := CheckPath(e.Path); err != nil {
			return invalid(field(), "%v", err)
		}
		if i > 0 && m.Entries[i-1].Path >= e.Path {
			return invalid(field(), "entries are not sorted by path, or path is repeated")
		}
		if e.InBase {
			return invalid(field()+" inBase", "delta kits are not supported by this offkit")
		}
		if role, _ := RoleOf(e.Path); e.Role != role {
			return invalid(field()+" role", "%q, but an entry at this path is %q", e.Role, role)
		}
		if hexd, ok := strings.CutPrefix(e.Path, ImageBlobDir); ok && hexd != e.SHA256 {
			return invalid(field()+" sha256", "%s, but an image blob is named by its digest", e.SHA256)
		}
		key := Fold(e.Path)
		if prev, ok := folded[key]; ok {
			return invalid(field(), "collides with %q when case and Unicode normalisation are ignored", prev)
		}
		folded[key] = e.Path
		keys[i] = key
		if e.Size < 0 || e.Size > MaxTotalSize-total {
			return invalid(field(), "size %d makes the kit larger than %d bytes", e.Size, int64(MaxTotalSize))
		}
		total += e.Size
	}
	// A path that is also a directory of another entry cannot be
	// materialised. Fold works character by character and keeps every "/"
	// (case folding and canonical decomposition never make or remove one),
	// so the folded directories of a path are the prefixes of its folded
	// key that end before a "/".
	for i, e := range m.Entries {
		key := keys[i]
		for j := len(key) - 1; j > 0; j-- {
			if key[j] != '/' {
				continue
			}
			if other, ok := folded[key[:j]]; ok {
				return invalid(fmt.Sprintf("entries %q", e.Path), "is inside %q, which is a file", other)
			}
		}
	}
	for i, im := range m.Images {
		for j, sb := range im.SignedBy {
			if !slices.Contains(im.Signatures, sb.Signature) {
				return invalid(fmt.Sprintf("images[%d] %q signedBy[%d]", i, im.Reference, j), "signature %s is not one of the image's signatures", sb.Signature)
			}
		}
	}
	if err := m.validateDebug(); err != nil {
		return err
	}
	if err := m.validateMirror(); err != nil {
		return err
	}
	if err := m.validateAuthority(); err != nil {
		return err
	}
	if m.ExpiresAt != nil && !m.ExpiresAt.After(m.CreatedAt) {
		return invalid("expiresAt", "%s is not after createdAt %s", m.ExpiresAt.Format(time.RFC3339), m.CreatedAt.Format(time.RFC3339))
	}
	return nil
}

// CheckPath reports why p is not a safe content path: CheckName's rules, and
// inside one of the content folders (RoleOf), which keeps content away from
// the kit's head (offkit/, SHA256SUMS) and from the names a site reserves
// for itself (.offkit/ in a generation).
func CheckPath(p string) error {
	if err := CheckName(p); err != nil {
		return err
	}
	if p == "SHA256SUMS" || p == "offkit" || strings.HasPrefix(p, "offkit/") {
		return errors.New("path is reserved for the kit's head")
	}
	_, err := RoleOf(p)
	return err
}

// CheckName reports why p is not a safe archive name: it must be relative,
// slash-separated, clean, printable UTF-8 without backslashes, and at most
// MaxPathLen bytes.
func CheckName(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case len(p) > MaxPathLen:
		return fmt.Errorf("path of %d bytes, over %d", len(p), MaxPathLen)
	case !utf8.ValidString(p):
		return errors.New("path is not UTF-8")
	case strings.HasPrefix(p, "/"):
		return errors.New("absolute path")
	case strings.ContainsRune(p, '\\'):
		return errors.New("path contains a backslash")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("path contains control character %q", r)
		}
	}
	for elem := range strings.SplitSeq(p, "/") {
		switch elem {
		case "":
			return errors.New("path has an empty element")
		case ".", "..":
			return fmt.Errorf("path has a %q element", elem)
		}
		if len(elem) > MaxNameLen {
			return fmt.Errorf("path element of %d bytes, over %d", len(elem), MaxNameLen)
		}
	}
	return nil
}

// Digest returns the manifest digest ("sha256:" + hex) of manifest bytes.
func Digest(b []byte) string { return "sha256:" + sha256Hex(b) }

// SHA256SUMS returns the SHA256SUMS file of the shipped entries, in
// `sha256sum -c` form.
func (m *Manifest) SHA256SUMS() []byte {
	// Sized first: on a kit of many entries, a growing buffer would hold
	// up to twice the bytes while the head is written.
	b := make([]byte, 0, m.SHA256SUMSSize())
	for i := range m.Entries {
		b = appendSum(b, &m.Entries[i])
	}
	return b
}

// appendSum appends e's line of SHA256SUMS; an entry the base kit carries
// has none.
func appendSum(b []byte, e *Entry) []byte {
	if e.InBase {
		return b
	}
	b = append(b, e.SHA256...)
	b = append(b, "  "...)
	b = append(b, e.Path...)
	return append(b, '\n')
}

// SumsFile is the SHA256SUMS file of m, written a piece at a time: on a
// kit of many entries it is megabytes a writer need not hold at once.
func (m *Manifest) SumsFile() SumsFile { return SumsFile{m} }

// SumsFile is a manifest's SHA256SUMS file (Manifest.SumsFile).
type SumsFile struct{ m *Manifest }

// Size is the size of the file: len(m.SHA256SUMS()).
func (s SumsFile) Size() int64 { return int64(s.m.SHA256SUMSSize()) }

// WriteTo writes the file, the bytes of m.SHA256SUMS(), to w.
func (s SumsFile) WriteTo(w io.Writer) (int64, error) {
	var n int64
	b := make([]byte, 0, 64<<10)
	flush := func() error {
		k, err := w.Write(b)
		n += int64(k)
		b = b[:0]
		return err
	}
	for i := range s.m.Entries {
		if len(b) > cap(b)-1024 {
			if err := flush(); err != nil {
				return n, err
			}
		}
		b = appendSum(b, &s.m.Entries[i])
	}
	if err := flush(); err != nil {
		return n, err
	}
	return n, nil
}

// SHA256SUMSSize is the size of m.SHA256SUMS(), without building it.
func (m *Manifest) SHA256SUMSSize() int {
	n := 0
	for _, e := range m.Entries {
		if !e.InBase {
			n += len(e.SHA256) + 2 + len(e.Path) + 1
		}
	}
	return n
}

// SortEntries sorts entries by path, the order of the kit.
func SortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool { return es[i].Path < es[j].Path })
}

// MaxSpecSize bounds a kit.yaml.
const MaxSpecSize = 4 << 20

// ParseSpec decodes and validates a kit.yaml (YAML or JSON). Errors wrap
// errdef.ErrInvalid and name the field at fault, e.g. "kit.yaml: /images/0/ref: ...".
func ParseSpec(name string, b []byte) (*Spec, error) {
	if len(b) > MaxSpecSize {
		return nil, invalid(name, "%d bytes, over the limit of %d", len(b), MaxSpecSize)
	}
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return nil, invalid(name, "%v", err)
	}
	if err := schemas.Validate(schemas.Kit, j); err != nil {
		var fe *schemas.FieldError
		if errors.As(err, &fe) {
			return nil, invalid(name+": "+fe.Field, "%s", fe.Message)
		}
		return nil, err
	}
	var s Spec
	d := json.NewDecoder(bytes.NewReader(j))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return nil, invalid(name, "%v", err)
	}
	if s.CreatedAt != nil {
		t := s.CreatedAt.UTC().Truncate(time.Second)
		s.CreatedAt = &t
	}
	if s.ExpiresAt != nil {
		e := s.ExpiresAt.UTC().Truncate(time.Second)
		s.ExpiresAt = &e
		if s.CreatedAt != nil && !e.After(*s.CreatedAt) {
			return nil, invalid(name+": /expiresAt", "%s is not after createdAt %s", e.Format(time.RFC3339), s.CreatedAt.Format(time.RFC3339))
		}
	}
	seen := map[string]int{}
	for i, im := range s.Images {
		if j, ok := seen[im.Ref]; ok {
			return nil, invalid(fmt.Sprintf("%s: /images/%d/ref", name, i), "%q repeats /images/%d", im.Ref, j)
		}
		seen[im.Ref] = i
	}
	return &s, nil
}
