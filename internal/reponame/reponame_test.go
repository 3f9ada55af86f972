package reponame

import (
	"errors"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

func TestMap(t *testing.T) {
	d := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		m    Mapping
		ref  string
		want Ref
	}{
		{Mapping{}, "registry.stella-ops.org/stellaops/zastava-observer:1.4.2", Ref{Repository: "stellaops/zastava-observer", Tag: "1.4.2"}},
		{Mapping{StripPrefix: "stellaops/"}, "registry.stella-ops.org/stellaops/zastava-observer:1.4.2", Ref{Repository: "zastava-observer", Tag: "1.4.2"}},
		{Mapping{KeepHost: true}, "127.0.0.1:5000/team/app:1.2", Ref{Repository: "127.0.0.1/team/app", Tag: "1.2"}},
		{Mapping{}, "app:1.2", Ref{Repository: "library/app", Tag: "1.2"}},
		{Mapping{}, "reg.example/team/app:sha256-abc.sig", Ref{Repository: "team/app", Tag: "sha256-abc.sig"}},
		{Mapping{}, "reg.example/team/app@" + d, Ref{Repository: "team/app", Digest: d}},
		{Mapping{}, "reg.example:5000/team/app:v1@" + d, Ref{Repository: "team/app", Tag: "v1", Digest: d}},
	} {
		got, err := c.m.Map(c.ref)
		if err != nil || got != c.want {
			t.Errorf("%+v.Map(%q) = %+v, %v; want %+v", c.m, c.ref, got, err, c.want)
		}
	}
	for _, bad := range []string{"reg.example/team/app", "reg.example/Team/app:1", "reg.example/team/app@sha256:zz", "reg.example/../etc:1", "reg.example/team/app:" + string(make([]byte, 200))} {
		if _, err := (Mapping{}).Map(bad); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("Map(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}
