//go:build tools

// Package tools pins the oras CLI: `go build oras.land/oras/cmd/oras` in this
// module builds the version in go.mod.
package tools

import _ "oras.land/oras/cmd/oras"
