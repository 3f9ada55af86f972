package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/offkit/offkit/debugstore/fetch"
)

// fetchOCI fetches from the debug store artifact at ref (HOST/REPO:TAG),
// with the docker config's credentials, as push uses them.
func (a *app) fetchOCI(cmd *cobra.Command, ref, id string, o fetch.Options, plainHTTP bool, w io.Writer) (*fetch.Result, error) {
	store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	return fetch.FromOCI(cmd.Context(), ref, id, o, fetch.OCIOptions{PlainHTTP: plainHTTP, Credential: credentials.Credential(store)}, w)
}
