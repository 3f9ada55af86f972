package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/offkit/offkit/debugstore/fetch"
	"github.com/offkit/offkit/internal/errdef"
)

// fetchOCI fetches from the debug store artifact at ref (HOST/REPO:TAG).
func (a *app) fetchOCI(cmd *cobra.Command, ref, id string, o fetch.Options, plainHTTP bool, w io.Writer) (*fetch.Result, error) {
	return nil, fmt.Errorf("oci://%s: not built yet: %w", ref, errdef.ErrInvalid)
}
