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
	rest := *m
	rest.Entries = []Entry{}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&rest); err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	doc := buf.Bytes()
	at := bytes.Index(doc, []byte(entriesEmpty))
	if at < 0 || bytes.Count(doc, []byte(entriesEmpty)) != 1 {
		return nil, fmt.Errorf("encoding manifest: entries not found where encoding/json writes them")
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
