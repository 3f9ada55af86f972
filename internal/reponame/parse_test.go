package reponame

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// TestParseAgreesWithGGCR compares Parse with go-containerregistry's
// pkg/name (which offkit used before, and which the builder still pulls
// with) on a table of references.
func TestParseAgreesWithGGCR(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, ref := range []string{
		"app:1.2",
		"app@" + d,
		"team/app:1.2",
		"docker.io/app:1",
		"index.docker.io/app:1",
		"docker.io/team/app:1",
		"registry.stella-ops.org/stellaops/zastava-observer:1.4.2",
		"reg.example:5000/team/app:v1@" + d,
		"127.0.0.1:5000/team/app:1.2",
		"localhost:5000/app:1",
		"reg.example/a/b/c/d:latest",
		"reg.example/team/app_x:1",
		"reg.example/team/app__x:1",
		"reg.example/team/app---x:1",
		"reg.example/team/app.x:1",
		"reg.example/team/app:sha256-abc.sig",
		"Reg.Example/team/app:1",
		"reg.example/team/app:_v",
		"reg.example/team/app:" + strings.Repeat("v", 128),
		// Invalid for both.
		"reg.example/Team/app:1",
		"reg.example/team/app:" + strings.Repeat("v", 129),
		"reg.example/team/app@sha256:",
		"reg.example/team/app:1:2",
		"reg.example/te am/app:1",
		"reg.example/team/app:1/x",
		"reg.example/:1",
		":1",
		"@" + d,
	} {
		got, err := Parse(ref)
		want, werr := ggcr(ref)
		if (err == nil) != (werr == nil) {
			t.Errorf("Parse(%q) = %+v, %v; go-containerregistry: %+v, %v", ref, got, err, want, werr)
			continue
		}
		if err == nil && got != want {
			t.Errorf("Parse(%q) = %+v; go-containerregistry: %+v", ref, got, want)
		}
	}
}

// ggcr parses ref with pkg/name, as Parse reports it.
func ggcr(ref string) (Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return Reference{}, err
	}
	out := Reference{Host: r.Context().RegistryStr(), Path: r.Context().RepositoryStr()}
	if out.Host == name.DefaultRegistry {
		out.Host = DefaultHost
	}
	switch r := r.(type) {
	case name.Tag:
		out.Tag = r.TagStr()
		// pkg/name gives a reference without a tag "latest"; so does ref.
		if !strings.Contains(ref[strings.LastIndexByte(ref, '/')+1:], ":") {
			out.Tag = ""
		}
	case name.Digest:
		out.Digest = r.DigestStr()
		if i := strings.LastIndexByte(strings.TrimSuffix(ref, "@"+out.Digest), ':'); i > strings.LastIndexByte(ref, '/') {
			out.Tag = ref[i+1 : strings.IndexByte(ref, '@')]
		}
	}
	return out, nil
}

// TestParseDockerGrammar covers where pkg/name departs from the Docker
// reference grammar container runtimes follow: "localhost" is a host, a
// one-letter repository is valid, a tag starts with a letter, digit or "_",
// and a host is made of letters, digits, "-" and ".".
func TestParseDockerGrammar(t *testing.T) {
	for ref, want := range map[string]Reference{
		"localhost/app:1":  {Host: "localhost", Path: "app", Tag: "1"},
		"a:1":              {Host: DefaultHost, Path: "library/a", Tag: "1"},
		"[::1]:5000/app:1": {Host: "[::1]:5000", Path: "app", Tag: "1"},
	} {
		if got, err := Parse(ref); err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", ref, got, err, want)
		}
	}
	for _, ref := range []string{"reg.example/team/app:.v", "reg.example/team/app:-v", "reg_example.com/app:1"} {
		if got, err := Parse(ref); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", ref, got)
		}
	}
}

// FuzzParse: whatever Parse accepts, written back in full form, parses to
// the same reference, and its path is a valid repository name.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"app:1", "reg.example:5000/team/app:v1@sha256:" + strings.Repeat("ab", 32), "localhost/a", "[::1]:5000/x/y:z", "docker.io/library/app"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		r, err := Parse(ref)
		if err != nil {
			return
		}
		full := r.Host + "/" + r.Path
		if r.Tag != "" {
			full += ":" + r.Tag
		}
		if r.Digest != "" {
			full += "@" + r.Digest
		}
		again, err := Parse(full)
		if err != nil || again != r {
			t.Fatalf("Parse(%q) = %+v; Parse(%q) = %+v, %v", ref, r, full, again, err)
		}
		if !Name.MatchString(r.Path) {
			t.Fatalf("Parse(%q): path %q is not a repository name", ref, r.Path)
		}
	})
}
