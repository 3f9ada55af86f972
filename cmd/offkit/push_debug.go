package main

import (
	"context"
	"errors"

	"github.com/offkit/offkit/internal/errdef"
	"github.com/offkit/offkit/push"
	"github.com/offkit/offkit/site"
)

// pushDebugStore pushes the .debug files of the generation root serves,
// when it has any (nil when it has none).
func pushDebugStore(ctx context.Context, root, tag string, opts push.Options) (*push.DebugResult, error) {
	gen, _, err := site.NewView(root).OpenGeneration()
	if err != nil {
		return nil, err
	}
	defer gen.Close()
	res, err := push.DebugStore(ctx, gen, tag, opts)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, nil
	}
	return res, err
}
