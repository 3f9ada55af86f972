package main

import (
	"github.com/offkit/offkit/kit"
	"github.com/offkit/offkit/site"
	"github.com/offkit/offkit/verify"
)

// What each command prints with --json. Field names are camelCase, lists
// are [] when empty, never null; schemas/output/<command>.schema.json
// describes each (the tests check every command's output against it).

// buildOutput is `offkit build --json` (schemas/output/build.schema.json).
type buildOutput struct {
	Path           string `json:"path"`
	SignaturePath  string `json:"signaturePath,omitempty"` // absent for an unsigned kit
	Name           string `json:"name"`
	Version        string `json:"version"`
	ManifestDigest string `json:"manifestDigest"`
	KeyID          string `json:"keyId,omitempty"` // absent for an unsigned kit
	Size           int64  `json:"size"`
	Entries        int    `json:"entries"`
	Bytes          int64  `json:"bytes"`
}

func newBuildOutput(res *kit.BuildResult) buildOutput {
	out := buildOutput{
		Path: res.Path, SignaturePath: res.SignaturePath, Name: res.Manifest.Name, Version: res.Manifest.Version,
		ManifestDigest: res.ManifestDigest, Size: res.Size, Entries: len(res.Manifest.Entries), Bytes: res.Manifest.TotalSize(),
	}
	if res.Manifest.Signer != nil {
		out.KeyID = res.Manifest.Signer.KeyID
	}
	return out
}

// signOutput is `offkit sign --json` (schemas/output/sign.schema.json).
type signOutput struct {
	Path string `json:"path"`
	*kit.SignResult
}

// verifyOutput is `offkit verify --json` (schemas/output/verify.schema.json).
type verifyOutput struct {
	Kit            string               `json:"kit"`
	Name           string               `json:"name"`
	Version        string               `json:"version"`
	ManifestDigest string               `json:"manifestDigest"`
	Signer         string               `json:"signer"`
	FileSignature  string               `json:"fileSignature"`
	Entries        int                  `json:"entries"`
	Bytes          int64                `json:"bytes"`
	Seekable       bool                 `json:"seekable"`
	Verified       bool                 `json:"verified"`
	SignedImages   []verify.SignedImage `json:"signedImages"`
}

// rollbackOutput is `offkit rollback --json`
// (schemas/output/rollback.schema.json).
type rollbackOutput struct {
	Root       string          `json:"root"`
	Generation int             `json:"generation"`
	Kits       []site.KitState `json:"kits"`
}

// keyOutput is `offkit key generate --json` (schemas/output/key.schema.json).
type keyOutput struct {
	PrivateKey string `json:"privateKey"`
	PublicKey  string `json:"publicKey"`
	KeyID      string `json:"keyId"`
}

// orEmpty returns s, or an empty list for nil: JSON lists are [] not null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
