package site_test

import (
	"archive/tar"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/internal/kittest"
	"github.com/offkit/offkit/mirror"
	"github.com/offkit/offkit/site"
)

func concelier(id string, domains ...string) kittest.SiteMirrorExport {
	return kittest.SiteMirrorExport{Kind: "concelier", ExportID: id, Domains: domains, Created: id[:4] + "-" + id[4:6] + "-" + id[6:8] + "T00:00:00Z"}
}

// exportsOf reads the current generation's exports.json as a reader would
// (through ROOT/current) and checks it against the tree: every file it
// lists is there with its size, and each kind's latest link resolves to
// the exportId it names.
func exportsOf(t *testing.T, root string) *mirror.SiteExports {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "current", mirror.SiteExportsPath))
	if err != nil {
		t.Fatal(err)
	}
	x, err := mirror.ParseSiteExports(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range x.Exports {
		for _, f := range e.Files {
			fi, err := os.Lstat(filepath.Join(root, "current", f.Path))
			if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
				t.Fatalf("%s: %v %v", f.Path, fi, err)
			}
		}
	}
	for kind, id := range x.Latest {
		l := filepath.Join(root, "current", "mirror", kind, "latest")
		if target, err := os.Readlink(l); err != nil || target != id {
			t.Fatalf("%s -> %q (%v), exports.json says %q", l, target, err, id)
		}
		if _, err := os.Stat(filepath.Join(l, "mirror", "index.json")); err != nil {
			t.Fatalf("%s/mirror/index.json does not resolve: %v", l, err)
		}
	}
	return x
}

// summary is "kind id [retained] (kit version)" per export, sorted.
func summary(x *mirror.SiteExports) string {
	var out []string
	for _, e := range x.Exports {
		s := e.Kind + " " + e.ExportID
		if e.Retained {
			s += " retained"
		}
		out = append(out, s+" ("+e.Kit+" "+e.KitVersion+")")
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func TestMirrorLatestAndRetention(t *testing.T) {
	key := kittest.NewKey(t)
	dir := t.TempDir()
	root := filepath.Join(t.TempDir(), "site")
	a, b, c := concelier("20251121T000000Z", "primary", "community"), concelier("20251122T000000Z", "primary"), concelier("20251123T000000Z", "primary")
	vex := kittest.SiteMirrorExport{Kind: "excititor", ExportID: "20251120T000000Z", Domains: []string{"community"}, Created: "2025-11-20T06:00:00Z"}
	v1 := kittest.MirrorSiteKit(t, key, dir, "feeds", "1.0.0", nil, a, vex)
	v2 := kittest.MirrorSiteKit(t, key, dir, "feeds", "1.0.1", nil, b)
	v3 := kittest.MirrorSiteKit(t, key, dir, "feeds", "1.0.2", nil, c)
	other := kittest.MirrorSiteKit(t, key, dir, "other", "1.0.0", map[string]string{"files/x.txt": "x\n"})

	if _, err := install(t, root, v1, key, nil); err != nil {
		t.Fatal(err)
	}
	x := exportsOf(t, root)
	if got := summary(x); got != "concelier 20251121T000000Z (feeds 1.0.0), excititor 20251120T000000Z (feeds 1.0.0)" {
		t.Fatalf("v1: %s", got)
	}
	if e := x.Export("concelier", a.ExportID); strings.Join(e.Domains, ",") != "community,primary" || e.Created != "2025-11-21T00:00:00Z" || len(e.Files) != 7 {
		t.Fatalf("v1 export: %+v", e)
	}
	if e := x.Export("excititor", vex.ExportID); e.GeneratedAt != "2025-11-20T06:00:00Z" {
		t.Fatalf("excititor export: %+v", e)
	}
	wantA, _ := os.ReadFile(filepath.Join(root, "current/mirror/concelier/latest/mirror/primary/bundle.json"))
	if !strings.Contains(string(wantA), a.ExportID) {
		t.Fatalf("latest/…/bundle.json is %q", wantA)
	}

	// v2 drops export A (and the excititor export): B is latest, A and the
	// excititor export are retained, with their files. Generations are
	// removed at once from here on (grace -1): retained files are links that
	// outlive the generation they came from.
	prune := func(o *site.InstallOptions) { o.Grace = -1 }
	if _, err := install(t, root, v2, key, prune); err != nil {
		t.Fatal(err)
	}
	x = exportsOf(t, root)
	if got := summary(x); got != "concelier 20251121T000000Z retained (feeds 1.0.0), concelier 20251122T000000Z (feeds 1.0.1), excititor 20251120T000000Z retained (feeds 1.0.0)" {
		t.Fatalf("v2: %s", got)
	}
	if x.Latest["concelier"] != b.ExportID || x.Latest["excititor"] != vex.ExportID {
		t.Fatalf("v2 latest: %v", x.Latest)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "current/mirror/concelier", a.ExportID, "mirror/primary/bundle.json")); string(got) != string(wantA) {
		t.Fatalf("retained bundle: %q", got)
	}
	checkConsistent(t, root)

	// Another kit without exports keeps them all as they are.
	if _, err := install(t, root, other, key, prune); err != nil {
		t.Fatal(err)
	}
	if got := summary(exportsOf(t, root)); got != "concelier 20251121T000000Z retained (feeds 1.0.0), concelier 20251122T000000Z (feeds 1.0.1), excititor 20251120T000000Z retained (feeds 1.0.0)" {
		t.Fatalf("after another kit: %s", got)
	}

	if _, err := os.Stat(filepath.Join(root, "generations", "1")); !os.IsNotExist(err) {
		t.Fatalf("generation 1 not pruned: %v", err)
	}
	// v3: C active, B retained, A beyond the two kept and gone.
	if _, err := install(t, root, v3, key, prune); err != nil {
		t.Fatal(err)
	}
	x = exportsOf(t, root)
	if got := summary(x); got != "concelier 20251122T000000Z retained (feeds 1.0.1), concelier 20251123T000000Z (feeds 1.0.2), excititor 20251120T000000Z retained (feeds 1.0.0)" {
		t.Fatalf("v3: %s", got)
	}
	if _, err := os.Lstat(filepath.Join(root, "current/mirror/concelier", a.ExportID)); !os.IsNotExist(err) {
		t.Fatalf("export A still in the generation: %v", err)
	}

	// Forced activation of v1: A is active again, latest stays C.
	if _, err := install(t, root, v1, key, func(o *site.InstallOptions) { o.Force, o.Reason = true, "test" }); err != nil {
		t.Fatal(err)
	}
	x = exportsOf(t, root)
	if x.Latest["concelier"] != c.ExportID {
		t.Fatalf("forced older kit moved latest to %s: %s", x.Latest["concelier"], summary(x))
	}
	if got := summary(x); got != "concelier 20251121T000000Z (feeds 1.0.0), concelier 20251123T000000Z retained (feeds 1.0.2), excititor 20251120T000000Z (feeds 1.0.0)" {
		t.Fatalf("forced v1: %s", got)
	}

	// Rollback returns to v3's generation and its latest.
	s, err := site.Open(root, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rollback(site.RollbackOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	x = exportsOf(t, root)
	if got := summary(x); !strings.Contains(got, "concelier 20251123T000000Z (feeds 1.0.2)") || x.Latest["concelier"] != c.ExportID {
		t.Fatalf("after rollback: %s", got)
	}
	checkConsistent(t, root)
}

func TestMirrorKeepExports(t *testing.T) {
	key := kittest.NewKey(t)
	dir := t.TempDir()
	root := filepath.Join(t.TempDir(), "site")
	a, b := concelier("20251121T000000Z", "primary"), concelier("20251122T000000Z", "primary")
	keep1 := func(o *site.InstallOptions) { o.KeepExports = 1 }
	if _, err := install(t, root, kittest.MirrorSiteKit(t, key, dir, "feeds", "1.0.0", nil, a), key, keep1); err != nil {
		t.Fatal(err)
	}
	if _, err := install(t, root, kittest.MirrorSiteKit(t, key, dir, "feeds", "1.0.1", nil, b), key, keep1); err != nil {
		t.Fatal(err)
	}
	if got := summary(exportsOf(t, root)); got != "concelier 20251122T000000Z (feeds 1.0.1)" {
		t.Fatalf("keep 1: %s", got)
	}
	// Even with keep 1, an older kit does not move latest backwards: the
	// newest export stays, retained.
	if _, err := install(t, root, kittest.MirrorSiteKit(t, key, dir, "feeds", "0.9.0", nil, a), key, func(o *site.InstallOptions) {
		o.KeepExports, o.Force, o.Reason = 1, true, "test"
	}); err != nil {
		t.Fatal(err)
	}
	if x := exportsOf(t, root); x.Latest["concelier"] != b.ExportID || summary(x) != "concelier 20251121T000000Z (feeds 0.9.0), concelier 20251122T000000Z retained (feeds 1.0.1)" {
		t.Fatalf("forced older kit, keep 1: %s, latest %v", summary(x), x.Latest)
	}
}

// Two kits: each its exports; latest is the newest of both; the same
// export in a second kit is refused.
func TestMirrorTwoKits(t *testing.T) {
	key := kittest.NewKey(t)
	dir := t.TempDir()
	root := filepath.Join(t.TempDir(), "site")
	a, b := concelier("20251121T000000Z", "primary"), concelier("20251122T000000Z", "secondary")
	if _, err := install(t, root, kittest.MirrorSiteKit(t, key, dir, "feeds-a", "1.0.0", nil, a), key, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := install(t, root, kittest.MirrorSiteKit(t, key, dir, "feeds-b", "1.0.0", nil, b), key, nil); err != nil {
		t.Fatal(err)
	}
	if x := exportsOf(t, root); x.Latest["concelier"] != b.ExportID || summary(x) != "concelier 20251121T000000Z (feeds-a 1.0.0), concelier 20251122T000000Z (feeds-b 1.0.0)" {
		t.Fatalf("%s %v", summary(x), x.Latest)
	}
	before := snapshot(t, root)
	for name, x := range map[string]kittest.SiteMirrorExport{
		"same":       concelier(a.ExportID, "other"),
		"case-folds": concelier(strings.ToLower(a.ExportID), "other"),
	} {
		_, err := install(t, root, kittest.MirrorSiteKit(t, key, dir, "feeds-"+name, "1.0.0", nil, x), key, nil)
		if errdef.ExitCode(err) != errdef.ExitInvalid || !strings.Contains(err.Error(), "already installed by kit feeds-a") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if snapshot(t, root) != before {
		t.Fatal("a refused kit changed the site")
	}
}

// Hostile mirror layouts are refused at install with exit 11, before
// anything is written (a kit the manifest rules refuse is quarantined; one
// the site's rules refuse is not).
func TestMirrorHostileLayout(t *testing.T) {
	key := kittest.NewKey(t)
	dir := t.TempDir()
	root := filepath.Join(t.TempDir(), "site")
	if _, err := install(t, root, kittest.MirrorSiteKit(t, key, dir, "feeds", "1.0.0", nil, concelier("20251121T000000Z", "primary")), key, nil); err != nil {
		t.Fatal(err)
	}
	before := unquarantined(snapshot(t, root))
	ok := concelier("20251122T000000Z", "primary")
	cases := map[string]struct {
		extra   map[string]string
		exports []kittest.SiteMirrorExport
		want    string
	}{
		"outside mirror/":  {extra: map[string]string{"mirror/concelier/20251122T000000Z/bundle.json": "{}"}, want: "not under mirror/concelier/20251122T000000Z/mirror/"},
		"unknown kind":     {extra: map[string]string{"mirror/feedser/20251122T000000Z/mirror/index.json": "{}"}, want: `kind "feedser"`},
		"no export id":     {extra: map[string]string{"mirror/concelier/index.json": "{}"}, want: "no mirror[] export concelier/index.json"},
		"no export folder": {extra: map[string]string{"mirror/excititor/x.json": "{}"}, want: "excititor/x.json"},
		"latest as id":     {extra: map[string]string{"mirror/concelier/latest/mirror/index.json": "{}"}, want: "concelier/latest"},
		"latest record":    {exports: []kittest.SiteMirrorExport{ok, {Kind: "concelier", ExportID: "latest", Domains: []string{"secondary"}}}, want: `"latest" is reserved`},
		"LATEST record":    {exports: []kittest.SiteMirrorExport{ok, {Kind: "excititor", ExportID: "LATEST", Domains: []string{"community"}}}, want: `"latest" is the site's link`},
		"latest file":      {extra: map[string]string{"mirror/concelier/latest": "20251122T000000Z"}, want: "concelier/latest"},
		"dot-dot id":       {exports: []kittest.SiteMirrorExport{ok, {Kind: "concelier", ExportID: "..", Domains: []string{"primary"}}}, want: "invalid"},
		"dots id":          {exports: []kittest.SiteMirrorExport{ok, {Kind: "concelier", ExportID: ".hidden", Domains: []string{"primary"}}}, want: "starts with a dot"},
		"ids fold":         {exports: []kittest.SiteMirrorExport{ok, {Kind: "concelier", ExportID: "20251122t000000z", Domains: []string{"secondary"}}}, want: "collides with"},
	}
	for name, c := range cases {
		exports := c.exports
		if exports == nil {
			exports = []kittest.SiteMirrorExport{ok}
		}
		kitPath := kittest.MirrorSiteKit(t, key, dir, "feeds", "1.0.1", c.extra, exports...)
		_, err := install(t, root, kitPath, key, nil)
		if errdef.ExitCode(err) != errdef.ExitInvalid || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
		os.Remove(kitPath)
	}
	if unquarantined(snapshot(t, root)) != before {
		t.Fatal("a refused kit changed the site")
	}
}

// unquarantined leaves out of a snapshot what a refused kit leaves by
// design: its quarantine record and audit line.
func unquarantined(snap string) string {
	var out []string
	for _, l := range strings.Split(snap, "\n") {
		if !strings.HasPrefix(l, "quarantine/") && !strings.HasPrefix(l, "audit.log ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A kit cannot bring its own `latest` link: kits never carry links.
func TestMirrorKitLinkRefused(t *testing.T) {
	key := kittest.NewKey(t)
	dir := t.TempDir()
	root := filepath.Join(t.TempDir(), "site")
	x := concelier("20251122T000000Z", "primary")
	var content []kittest.Entry
	for p, c := range x.Files() {
		content = append(content, kittest.File(p, []byte(c)))
	}
	link := kittest.Entry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: "mirror/concelier/latest", Linkname: x.ExportID, Mode: 0o777, ModTime: kittest.Created}}
	m := kittest.ManifestFor(append(content, link))
	m.Name, m.Version = "feeds", "1.0.0"
	m.Mirror = append(m.Mirror, x.Record())
	byName := map[string]kittest.Entry{link.Header.Name: link}
	for _, e := range content {
		byName[e.Header.Name] = e
	}
	var ordered []kittest.Entry
	for _, e := range m.Entries {
		ordered = append(ordered, byName[e.Path])
	}
	kitPath := (&kittest.Craft{Content: ordered, Manifest: m, Key: key}).Write(t, filepath.Join(dir, "link.kit.tar.zst"))
	_, err := install(t, root, kitPath, key, nil)
	if errdef.ExitCode(err) != errdef.ExitInvalid {
		t.Fatalf("a kit with a latest link: %v", err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("a refused first install left the root: %v", err)
	}
}
