package mirror

import (
	"strings"
	"testing"
	"time"

	"github.com/offkit/offkit/internal/errdef"
)

const siteHexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func siteDoc(files, latest string) string {
	return `{"exports":[{"kind":"concelier","exportId":"20251123T000000Z","kit":"feeds","kitVersion":"1.0.0","retained":false,
	  "domains":["primary"],"created":"2025-11-23T00:00:00Z","files":[` + files + `]}],"latest":` + latest + `}`
}

func TestParseSiteExports(t *testing.T) {
	good := `{"path":"mirror/concelier/20251123T000000Z/mirror/primary/bundle.json","size":3,"sha256":"` + siteHexA + `"}`
	x, err := ParseSiteExports([]byte(siteDoc(good, `{"concelier":"20251123T000000Z"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if e, f, ok := x.File("mirror/concelier/20251123T000000Z/mirror/primary/bundle.json"); !ok || f.Size != 3 || e.ExportID != "20251123T000000Z" {
		t.Fatalf("File: %v %+v %+v", ok, f, e)
	}
	if _, _, ok := x.File("mirror/concelier/20251123T000000Z/mirror/primary/../primary/bundle.json"); ok {
		t.Fatal("File found an unclean path")
	}
	if age, ok := x.Exports[0].Age(time.Date(2025, 11, 25, 0, 0, 0, 0, time.UTC)); !ok || age != 48*time.Hour {
		t.Fatalf("age %v %v", age, ok)
	}
	for name, doc := range map[string]string{
		"not json":        `{"exports":`,
		"outside export":  siteDoc(strings.Replace(good, "20251123T000000Z/mirror/", "20251122T000000Z/mirror/", 1), `{"concelier":"20251123T000000Z"}`),
		"dot-dot":         siteDoc(strings.Replace(good, "primary/bundle.json", "../../x/mirror/a", 1), `{"concelier":"20251123T000000Z"}`),
		"bare prefix":     siteDoc(strings.Replace(good, "primary/bundle.json", "", 1), `{"concelier":"20251123T000000Z"}`),
		"twice":           siteDoc(good+","+good, `{"concelier":"20251123T000000Z"}`),
		"bad digest":      siteDoc(strings.Replace(good, siteHexA, "AA", 1), `{"concelier":"20251123T000000Z"}`),
		"negative size":   siteDoc(strings.Replace(good, `"size":3`, `"size":-1`, 1), `{"concelier":"20251123T000000Z"}`),
		"latest missing":  siteDoc(good, `{}`),
		"latest wrong":    siteDoc(good, `{"concelier":"20251122T000000Z"}`),
		"latest stranger": siteDoc(good, `{"concelier":"20251123T000000Z","excititor":"x"}`),
		"latest id":       strings.ReplaceAll(siteDoc(good, `{"concelier":"20251123T000000Z"}`), "20251123T000000Z", "Latest"),
		"unknown kind":    strings.Replace(siteDoc(good, `{"concelier":"20251123T000000Z"}`), `"kind":"concelier"`, `"kind":"feedser"`, 1),
	} {
		if _, err := ParseSiteExports([]byte(doc)); errdef.ExitCode(err) != errdef.ExitInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSplitSitePath(t *testing.T) {
	if k, id, err := SplitSitePath("mirror/excititor/20251123T000000Z/mirror/community/index.json"); err != nil || k != "excititor" || id != "20251123T000000Z" {
		t.Fatalf("%s %s %v", k, id, err)
	}
	for _, p := range []string{
		"mirror/concelier/20251123T000000Z/index.json", "mirror/concelier/latest/mirror/index.json",
		"mirror/concelier/LATEST/mirror/index.json", "mirror/concelier/../mirror/index.json",
		"mirror/concelier/x/mirror/", "mirror/concelier/x/mirror", "mirror/feedser/x/mirror/a", "mirror/concelier/a%2fb/mirror/a",
	} {
		if _, _, err := SplitSitePath(p); errdef.ExitCode(err) != errdef.ExitInvalid {
			t.Errorf("%s: %v", p, err)
		}
	}
}
