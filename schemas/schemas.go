// Package schemas embeds the JSON Schemas of offkit's documents and validates
// documents against them, reporting the JSON pointer of the field at fault.
//
//   - kit.schema.json: the kit spec (kit.yaml, after YAML is read as JSON);
//   - manifest.schema.json: the kit manifest (offkit/manifest.json);
//   - serve.schema.json: the serve configuration (serve.yaml), when present;
//   - output/*.schema.json: what each offkit command prints with --json
//     (output/error.schema.json for every failure, output/log.schema.json for
//     the JSON log lines on stderr).
//
// The schemas are also the documentation of those formats: every field has
// its type, bounds and pattern there.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed *.schema.json output/*.schema.json
var files embed.FS

// Names of the embedded schemas.
const (
	Kit      = "kit.schema.json"
	Manifest = "manifest.schema.json"
	Serve    = "serve.schema.json"

	OutputBuild        = "output/build.schema.json"
	OutputSign         = "output/sign.schema.json"
	OutputInspect      = "output/inspect.schema.json"
	OutputVerify       = "output/verify.schema.json"
	OutputInstall      = "output/install.schema.json"
	OutputStatus       = "output/status.schema.json"
	OutputMirrorVerify = "output/mirror-verify.schema.json"
	OutputSiteVerify   = "output/site-verify.schema.json"
	OutputRollback     = "output/rollback.schema.json"
	OutputKey          = "output/key.schema.json"
	OutputPush         = "output/push.schema.json"
	OutputVersion      = "output/version.schema.json"
	OutputDebugBuildID = "output/debug-buildid.schema.json"
	OutputDebugFind    = "output/debug-find.schema.json"
	OutputDebugFetch   = "output/debug-fetch.schema.json"
	OutputError        = "output/error.schema.json"
	OutputLog          = "output/log.schema.json"
)

// FS returns the embedded schema files.
func FS() fs.FS { return files }

// FieldError is a document that does not match its schema: Field is the JSON
// pointer of the value at fault ("/images/0/ref"), "/" for the document.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

var (
	mu       sync.Mutex
	compiled = map[string]*jsonschema.Schema{}
)

func schema(name string) (*jsonschema.Schema, error) {
	mu.Lock()
	defer mu.Unlock()
	if s, ok := compiled[name]; ok {
		return s, nil
	}
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(name, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	s, err := c.Compile(name)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	compiled[name] = s
	return s, nil
}

// Validate checks the JSON document doc against the named schema. A document
// that is not JSON or does not match returns a *FieldError.
func Validate(name string, doc []byte) error {
	s, err := schema(name)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return &FieldError{Field: "/", Message: "malformed JSON: " + err.Error()}
	}
	if d.More() {
		return &FieldError{Field: "/", Message: "trailing data after the JSON document"}
	}
	err = s.Validate(v)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return &FieldError{Field: "/", Message: err.Error()}
	}
	leaf := deepest(ve)
	field := "/" + strings.Join(leaf.InstanceLocation, "/")
	return &FieldError{Field: field, Message: leaf.ErrorKind.LocalizedString(printer)}
}

var printer = message.NewPrinter(language.English)

// deepest follows the first cause down to a leaf, which names the innermost
// field at fault.
func deepest(e *jsonschema.ValidationError) *jsonschema.ValidationError {
	for len(e.Causes) > 0 {
		best := e.Causes[0]
		for _, c := range e.Causes[1:] {
			if len(c.InstanceLocation) > len(best.InstanceLocation) {
				best = c
			}
		}
		e = best
	}
	return e
}
