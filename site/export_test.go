package site

import (
	"context"
	"os"

	"github.com/offkit/offkit/mirror"
)

// GenFiles is what CheckMirrorThrough reads a generation through.
type GenFiles = genFiles

// CheckMirrorThrough is v.CheckMirror reading the generation's files
// through files(gen), which tests use to make a read fail.
func CheckMirrorThrough(ctx context.Context, v *View, keys *mirror.KeySet, files func(*os.Root) GenFiles) (*MirrorCheck, error) {
	return v.checkMirror(ctx, keys, files)
}
