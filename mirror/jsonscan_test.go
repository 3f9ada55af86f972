package mirror

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/offkit/offkit/internal/errdef"
)

// scan feeds b to a jsonScan in chunks of n bytes.
func scan(b []byte, n int, seq bool) (*jsonScan, error) {
	s := &jsonScan{seq: seq}
	for len(b) > 0 {
		k := min(n, len(b))
		if _, err := s.Write(b[:k]); err != nil {
			return s, err
		}
		b = b[k:]
	}
	return s, s.end()
}

func TestJSONScan(t *testing.T) {
	good := []string{`{}`, `[]`, `0`, `-0.5e+10`, `"a\u00e9\n"`, ` {"a":[1,true,false,null,{"b":"c"}]} `, `1E5`, `[[[]]]`}
	bad := []string{``, `{`, `{"a"}`, `{"a":}`, `[1,]`, `01`, `1.`, `-`, `"\x"`, "\"a\x01\"", `tru`, `{} {}`, `{"a":1,}`, `[1 2]`, `nul`, `"\u12g4"`, `{1:2}`, `]`}
	for _, g := range good {
		for _, n := range []int{1, 3, 1000} {
			if _, err := scan([]byte(g), n, false); err != nil {
				t.Errorf("%q (chunks of %d): %v", g, n, err)
			}
		}
	}
	for _, b := range bad {
		_, err := scan([]byte(b), 1, false)
		if !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("%q accepted (%v)", b, err)
		}
	}
	if _, err := scan([]byte("{\"a\":1}\n{\"b\":2}\n"), 2, true); err != nil {
		t.Errorf("JSON lines: %v", err)
	}
	// Nesting exactly at the limit is JSON; one level more is refused.
	at := strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth)
	if _, err := scan([]byte(at), 4096, false); err != nil {
		t.Errorf("nesting at the limit: %v", err)
	}
	if _, err := scan([]byte("["+at+"]"), 4096, false); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Errorf("nesting over the limit: %v", err)
	}
}

func TestJSONScanGeneratedAt(t *testing.T) {
	cases := []struct {
		in            string
		want          string
		present, isOK bool
	}{
		{`{"generatedAt":"2025-11-23T00:00:00Z","x":[{"generatedAt":"no"}]}`, "2025-11-23T00:00:00Z", true, true},
		{`{"x":{"generatedAt":"nested"}}`, "", false, false},
		{`{"generatedAt":5}`, "", true, false},
		{`["generatedAt","x"]`, "", false, false},
		{`{"a":{"b":1},"generatedAt":"t"}`, "t", true, true},
		{`{"generatedAt":"` + strings.Repeat("x", 100) + `"}`, "", true, false},
	}
	for _, c := range cases {
		s, err := scan([]byte(c.in), 1, false)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		v, present, ok := s.generatedAt()
		if present != c.present || ok != c.isOK || (ok && v != c.want) {
			t.Errorf("%s: generatedAt = %q %v %v, want %q %v %v", c.in, v, present, ok, c.want, c.present, c.isOK)
		}
	}
}

// FuzzJSONScan: the streaming check agrees with encoding/json.Valid, in
// any chunking.
func FuzzJSONScan(f *testing.F) {
	for _, s := range []string{`{"generatedAt":"2025-11-23T00:00:00Z"}`, `[1,2.5e-3,"a\"b"]`, `{"a":{"b":[null,true]}}`, `-0`, `"\ud800"`} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, n uint8) {
		_, err := scan(b, int(n)+1, false)
		if (err == nil) != json.Valid(b) {
			t.Fatalf("scan(%q) = %v, json.Valid = %v", b, err, json.Valid(b))
		}
	})
}
