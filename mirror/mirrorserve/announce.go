package mirrorserve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// announcedIndex returns the bytes of an export's index.json as the site
// serves it: its top-level "domains" array keeps only the entries of
// domains the site serves (each at most once), so that a consumer
// following the index asks only for what is there. A kit may carry a
// subset of an export's domains, and carries the exporter's index byte for
// byte (its digest is the exporter's), so the filtering happens here.
//
// Every other byte is kept as the exporter wrote it: the other fields
// (unknown fields are data), their order and spacing, and each kept entry's
// bytes; when nothing is dropped the result is b itself. An entry is kept
// only when it is a JSON object whose "id" (every key equal to "id" under
// case folding, as case-insensitive readers match it) is one string naming
// a served domain not kept before; anything else (not an object, no id, an
// id of another domain, a repeated id) is dropped. Every top-level key equal
// to "domains" under case folding is filtered. An index that is not a JSON
// object, or whose "domains" is neither an array nor null, is an error: the
// site cannot tell what it announces.
func announcedIndex(b []byte, served map[string]bool) ([]byte, error) {
	if !json.Valid(b) {
		return nil, errors.New("not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	type span struct {
		start, end int
		repl       []byte
	}
	var spans []span
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		if !strings.EqualFold(key, "domains") {
			continue
		}
		end := int(dec.InputOffset())
		start := end - len(raw)
		if start < 0 || !bytes.Equal(b[start:end], raw) {
			return nil, fmt.Errorf("%q: cannot locate its value", key)
		}
		repl, err := filterDomains(raw, served)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", key, err)
		}
		if repl != nil {
			spans = append(spans, span{start, end, repl})
		}
	}
	if len(spans) == 0 {
		return b, nil
	}
	var out bytes.Buffer
	prev := 0
	for _, s := range spans {
		out.Write(b[prev:s.start])
		out.Write(s.repl)
		prev = s.end
	}
	out.Write(b[prev:])
	if !json.Valid(out.Bytes()) {
		return nil, errors.New("filtering the domains did not give valid JSON")
	}
	return out.Bytes(), nil
}

// filterDomains returns the array raw with only the entries announcedIndex
// keeps, or nil when it keeps them all (raw is then served as is). The
// separators of raw are kept: the space after '[', the one between the
// first two entries (between every two kept ones), and the one before ']'.
func filterDomains(raw json.RawMessage, served map[string]bool) ([]byte, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil, errors.New("not an array")
	}
	type elem struct{ start, end int }
	var all, kept []elem
	seen := map[string]bool{}
	for dec.More() {
		var e json.RawMessage
		if err := dec.Decode(&e); err != nil {
			return nil, err
		}
		end := int(dec.InputOffset())
		el := elem{end - len(e), end}
		if el.start < 0 || !bytes.Equal(raw[el.start:el.end], e) {
			return nil, errors.New("cannot locate an entry")
		}
		all = append(all, el)
		if id, ok := entryID(e); ok && served[id] && !seen[id] {
			seen[id] = true
			kept = append(kept, el)
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim(']') {
		return nil, errors.New("not an array")
	}
	if len(kept) == len(all) {
		return nil, nil
	}
	if len(kept) == 0 {
		return []byte("[]"), nil
	}
	sep := []byte(",")
	if len(all) > 1 {
		sep = raw[all[0].end:all[1].start]
	}
	var out bytes.Buffer
	out.Write(raw[:all[0].start])
	for i, el := range kept {
		if i > 0 {
			out.Write(sep)
		}
		out.Write(raw[el.start:el.end])
	}
	out.Write(raw[all[len(all)-1].end:])
	return out.Bytes(), nil
}

// entryID returns the id of a domains entry: e is a JSON object, and every
// key equal to "id" under case folding has one and the same string value.
func entryID(e json.RawMessage) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(e))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	id, found := "", false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		key, _ := t.(string)
		if !strings.EqualFold(key, "id") {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", false
			}
			continue
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return "", false
		}
		s, ok := v.(string)
		if !ok || found && s != id {
			return "", false
		}
		id, found = s, true
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		return "", false
	}
	return id, found
}
