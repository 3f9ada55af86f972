package manifest

import (
	"errors"
	"fmt"
	"strings"
)

// MaxMirrorName bounds a mirror export id, domain id or file name.
const MaxMirrorName = 128

// CheckMirrorName reports why s cannot name a mirror export, domain or file:
// it must be 1 to MaxMirrorName bytes of ASCII letters, digits, '.', '_' and
// '-', not start with '.', and not be "latest" (the site's link to the
// newest export). This keeps "..", "/", "\", "%" (an encoded slash),
// spaces and control characters out of every path a mirror name builds,
// on the build machine, in the kit, on the site and in URLs.
func CheckMirrorName(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > MaxMirrorName:
		return fmt.Errorf("name of %d bytes, over %d", len(s), MaxMirrorName)
	case s[0] == '.':
		return fmt.Errorf("name %q starts with a dot", s)
	case s == "latest":
		return errors.New(`name "latest" is reserved for the link to the newest export`)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name %q contains %q (allowed: letters, digits, '.', '_', '-')", s, rune(c))
		}
	}
	return nil
}

// validateMirror checks mirror[] against the entries: kinds and names are
// safe, each (kind, exportId) appears once, domains are sorted and unique,
// every file and signature is a mirror entry of the kit inside its export's
// domain folder, with the entry's size and sha256, and every entry under
// mirror/concelier/ or mirror/excititor/ belongs to an export of mirror[].
// A kit whose mirror[] names a file it does not carry is refused.
func (m *Manifest) validateMirror() error {
	byPath := make(map[string]*Entry, len(m.Entries))
	for i := range m.Entries {
		byPath[m.Entries[i].Path] = &m.Entries[i]
	}
	exports := map[string]bool{}
	for i, mi := range m.Mirror {
		field := fmt.Sprintf("mirror[%d]", i)
		if mi.Kind != MirrorConcelier && mi.Kind != MirrorExcititor {
			return invalid(field+" kind", "%q is not %s or %s", mi.Kind, MirrorConcelier, MirrorExcititor)
		}
		if err := CheckMirrorName(mi.ExportID); err != nil {
			return invalid(field+" exportId", "%v", err)
		}
		prefix := MirrorPrefix(mi.Kind, mi.ExportID)
		if exports[prefix] {
			return invalid(field, "export %s/%s is listed twice", mi.Kind, mi.ExportID)
		}
		exports[prefix] = true
		domains := map[string]bool{}
		for j, d := range mi.Domains {
			if err := CheckMirrorName(d); err != nil {
				return invalid(fmt.Sprintf("%s domains[%d]", field, j), "%v", err)
			}
			if j > 0 && mi.Domains[j-1] >= d {
				return invalid(fmt.Sprintf("%s domains[%d]", field, j), "domains are not sorted, or %q is repeated", d)
			}
			domains[d] = true
		}
		if _, ok := byPath[prefix+"index.json"]; !ok {
			return invalid(field, "the kit carries no %sindex.json", prefix)
		}
		for j, f := range mi.Files {
			ff := fmt.Sprintf("%s files[%d] %q", field, j, f.Path)
			if !domains[f.Domain] {
				return invalid(ff+" domain", "%q is not one of the export's domains", f.Domain)
			}
			if j > 0 && mi.Files[j-1].Path >= f.Path {
				return invalid(ff, "files are not sorted by path, or the path is repeated")
			}
			dir := prefix + f.Domain + "/"
			if err := mirrorEntry(byPath, dir, f.Path); err != nil {
				return invalid(ff+" path", "%v", err)
			}
			if e := byPath[f.Path]; e.Size != f.Size || e.SHA256 != f.SHA256 {
				return invalid(ff, "size %d sha256 %s, but the kit's entry has size %d sha256 %s", f.Size, f.SHA256, e.Size, e.SHA256)
			}
			s := f.Signature
			if s == nil {
				return invalid(ff+" signature", "missing: every mirror file is carried with the signature it was checked against")
			}
			if err := mirrorEntry(byPath, dir, s.Path); err != nil {
				return invalid(ff+" signature path", "%v", err)
			}
			switch s.Kind {
			case MirrorSigJWS, MirrorSigCosign, MirrorSigDSSE:
			default:
				return invalid(ff+" signature kind", "%q is not %s, %s or %s", s.Kind, MirrorSigJWS, MirrorSigCosign, MirrorSigDSSE)
			}
			if s.KeyID == "" || len(s.KeyID) > 255 {
				return invalid(ff+" signature keyId", "empty or over 255 bytes")
			}
		}
	}
	for _, e := range m.Entries {
		rest, ok := strings.CutPrefix(e.Path, "mirror/")
		if !ok {
			continue
		}
		kind, rest, _ := strings.Cut(rest, "/")
		if kind != MirrorConcelier && kind != MirrorExcititor {
			continue
		}
		id, _, _ := strings.Cut(rest, "/")
		if !exports[MirrorPrefix(kind, id)] {
			return invalid(fmt.Sprintf("entries %q", e.Path), "under mirror/%s/ but no mirror[] export %s/%s lists it", kind, kind, id)
		}
		if !strings.HasPrefix(e.Path, MirrorPrefix(kind, id)) {
			return invalid(fmt.Sprintf("entries %q", e.Path), "not under %s", MirrorPrefix(kind, id))
		}
	}
	return nil
}

// mirrorEntry reports why p is not a mirror entry of the kit directly in
// folder dir.
func mirrorEntry(byPath map[string]*Entry, dir, p string) error {
	name, ok := strings.CutPrefix(p, dir)
	if !ok || strings.Contains(name, "/") {
		return fmt.Errorf("not a file directly in %s", dir)
	}
	e, ok := byPath[p]
	if !ok {
		return errors.New("not an entry of the kit")
	}
	if e.Role != RoleMirror {
		return fmt.Errorf("entry has role %q, not %q", e.Role, RoleMirror)
	}
	return nil
}
