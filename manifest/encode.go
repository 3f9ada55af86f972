package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// entriesEmpty is how encoding/json, indenting by two spaces, writes an
// empty entries[] in a manifest. A string cannot hold it: encoding/json
// escapes a newline inside one.
const entriesEmpty = "\n  \"entries\": []"

// encodeFast writes m exactly as encoding/json with a two-space indent
// does, but its entries (one per file, the bulk of a large manifest) by
// hand: encoding/json marshals and then re-indents the whole document,
// which cost as much as decoding it. The rest is encoding/json's own, with
// an empty entries[] that is then replaced. TestEncodeMatchesEncodingJSON
// and FuzzEncodeEntries compare it with encoding/json.
func (m *Manifest) encodeFast() ([]byte, error) {
	doc, at, err := m.encodeRest()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(doc)+len(m.Entries)*200)
	out = append(out, doc[:at]...)
	out = append(out, "\n  \"entries\": ["...)
	for i := range m.Entries {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendEntry(out, &m.Entries[i])
	}
	out = append(out, "\n  ]"...)
	out = append(out, doc[at+len(entriesEmpty):]...)
	return out, nil
}

// encodeRest encodes m with an empty entries[], which starts at doc[at:].
func (m *Manifest) encodeRest() (doc []byte, at int, err error) {
	rest := *m
	rest.Entries = []Entry{}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&rest); err != nil {
		return nil, 0, fmt.Errorf("encoding manifest: %w", err)
	}
	doc = buf.Bytes()
	at = bytes.Index(doc, []byte(entriesEmpty))
	if at < 0 || bytes.Count(doc, []byte(entriesEmpty)) != 1 {
		return nil, 0, fmt.Errorf("encoding manifest: entries not found where encoding/json writes them")
	}
	return doc, at, nil
}

// encodesTo reports whether Encode would return exactly b, without
// building the encoding whole: the entries are encoded one at a time and
// compared as they go, so checking a large manifest does not hold a second
// copy of it.
func (m *Manifest) encodesTo(b []byte) bool {
	if len(m.Entries) == 0 {
		again, err := m.Encode()
		return err == nil && bytes.Equal(again, b)
	}
	doc, at, err := m.encodeRest()
	if err != nil {
		return false
	}
	eat := func(s []byte) bool {
		var ok bool
		b, ok = bytes.CutPrefix(b, s)
		return ok
	}
	if !eat(doc[:at]) || !eat([]byte("\n  \"entries\": [")) {
		return false
	}
	var one []byte
	for i := range m.Entries {
		one = one[:0]
		if i > 0 {
			one = append(one, ',')
		}
		if one = appendEntry(one, &m.Entries[i]); !eat(one) {
			return false
		}
	}
	return eat([]byte("\n  ]")) && eat(doc[at+len(entriesEmpty):]) && len(b) == 0
}

// appendEntry appends e as encoding/json writes it at depth 2 of a
// document indented by two spaces, from the newline before its "{".
func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, "\n    {\n      \"path\": "...)
	b = appendString(b, e.Path)
	b = append(b, ",\n      \"size\": "...)
	b = strconv.AppendInt(b, e.Size, 10)
	b = append(b, ",\n      \"sha256\": "...)
	b = appendString(b, e.SHA256)
	if e.MediaType != "" {
		b = append(b, ",\n      \"mediaType\": "...)
		b = appendString(b, e.MediaType)
	}
	b = append(b, ",\n      \"role\": "...)
	b = appendString(b, string(e.Role))
	if e.InBase {
		b = append(b, ",\n      \"inBase\": true"...)
	}
	return append(b, "\n    }"...)
}

// appendString appends s as a JSON string the way encoding/json writes it:
// printable ASCII other than the characters it escapes as it is, anything
// else through encoding/json itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
