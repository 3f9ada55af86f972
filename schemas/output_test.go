package schemas

import (
	"errors"
	"io/fs"
	"testing"
)

// Every embedded schema compiles, and the output schemas refuse an empty
// object (each names required fields).
func TestSchemasCompile(t *testing.T) {
	names, err := fs.Glob(FS(), "output/*.schema.json")
	if err != nil || len(names) == 0 {
		t.Fatalf("output schemas: %v %v", names, err)
	}
	all, _ := fs.Glob(FS(), "*.schema.json")
	for _, name := range append(all, names...) {
		err := Validate(name, []byte(`{}`))
		var fe *FieldError
		if err != nil && !errors.As(err, &fe) {
			t.Errorf("%s: %v", name, err)
		}
		if len(name) > 7 && name[:7] == "output/" && fe == nil {
			t.Errorf("%s accepts {}", name)
		}
	}
}
