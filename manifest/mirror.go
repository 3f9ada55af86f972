package manifest

import (
	"errors"
	"fmt"
	"slices"
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
// A kit whose mirror[] names a file it does not carry is refused, and so is
// one that carries a signed file without its files[] record (mirrorLayout).
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
			if err := signedName(mi.Kind, f.Path, s.Path); err != nil {
				return invalid(ff, "%v", err)
			}
		}
		if err := m.mirrorLayout(byPath, field, mi); err != nil {
			return err
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

// signedName reports why a files[] record of an export of kind is not one
// offkit build writes: a Concelier record is a domain's bundle.json, an
// Excititor record an export file (not index.json, not a .jws); the
// signature is the file's path with ".jws" appended, as the exporter lays
// it out.
func signedName(kind, file, sig string) error {
	name := file[strings.LastIndexByte(file, '/')+1:]
	switch {
	case kind == MirrorConcelier && name != "bundle.json":
		return fmt.Errorf("a concelier signed file is a domain's bundle.json, not %q", name)
	case kind == MirrorExcititor && (name == "index.json" || strings.HasSuffix(name, ".jws")):
		return fmt.Errorf("an excititor signed file is an export file, not the domain index or a signature (%q)", name)
	case sig != file+".jws":
		return fmt.Errorf("signature %q: want %q", sig, file+".jws")
	}
	return nil
}

// mirrorLayout checks the entries of export mi (mirror[] record at field)
// against what offkit build carries: the export's index.json; per domain of
// mi.Domains, a Concelier domain's manifest.json, bundle.json and
// bundle.json.jws, an Excititor domain's index.json and its export files
// with their .jws; every signed file (a Concelier bundle.json, an Excititor
// file other than index.json) and every signature carried is one of mi's
// files[] records or their signatures, so that no file is served as a
// mirror file without the signature the build checked it against. Any
// other entry under the export (another name, a folder of a domain mi does
// not list, a deeper path, another role) is refused, naming it.
func (m *Manifest) mirrorLayout(byPath map[string]*Entry, field string, mi Mirror) error {
	prefix := MirrorPrefix(mi.Kind, mi.ExportID)
	records := map[string]bool{}
	sigs := map[string]bool{}
	for _, f := range mi.Files {
		records[f.Path] = true
		sigs[f.Signature.Path] = true
	}
	domains := map[string]bool{}
	for _, d := range mi.Domains {
		domains[d] = true
	}
	// The entries are sorted by path: those of the export are one run.
	i, _ := slices.BinarySearchFunc(m.Entries, prefix, func(e Entry, p string) int { return strings.Compare(e.Path, p) })
	for ; i < len(m.Entries) && strings.HasPrefix(m.Entries[i].Path, prefix); i++ {
		e := &m.Entries[i]
		bad := func(format string, a ...any) error {
			return invalid(fmt.Sprintf("entries %q", e.Path), "%s (%s %s/%s)", fmt.Sprintf(format, a...), field, mi.Kind, mi.ExportID)
		}
		if e.Role != RoleMirror {
			return bad("role %q under a mirror export, not %q", e.Role, RoleMirror)
		}
		rest := e.Path[len(prefix):]
		if rest == "index.json" {
			continue
		}
		d, name, ok := strings.Cut(rest, "/")
		switch {
		case !ok:
			return bad("the export's folder holds only index.json and the domain folders")
		case !domains[d]:
			return bad("in the folder of domain %q, which mirror[].domains does not list", d)
		case strings.Contains(name, "/"):
			return bad("a domain folder holds no folders")
		case records[e.Path] || sigs[e.Path]:
			continue
		}
		switch {
		case mi.Kind == MirrorConcelier && name == "manifest.json", mi.Kind == MirrorExcititor && name == "index.json":
			continue
		case mi.Kind == MirrorConcelier && name != "bundle.json" && name != "bundle.json.jws":
			return bad("a concelier domain folder holds only manifest.json, bundle.json and bundle.json.jws")
		case strings.HasSuffix(name, ".jws"):
			return bad("a signature that no mirror[].files[] record names")
		}
		return bad("a signed file without its mirror[].files[] record and signature")
	}
	for _, d := range mi.Domains {
		need := []string{"manifest.json", "bundle.json"}
		if mi.Kind == MirrorExcititor {
			need = []string{"index.json"}
		}
		for _, n := range need {
			if _, ok := byPath[prefix+d+"/"+n]; !ok {
				return invalid(field+" domains", "the kit carries no %s%s/%s", prefix, d, n)
			}
		}
	}
	return nil
}
