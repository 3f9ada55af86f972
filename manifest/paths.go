package manifest

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// MaxNameLen bounds one element of an entry path, in bytes: the longest file
// name the site's file systems take (NAME_MAX).
const MaxNameLen = 255

// The folders a kit's content lives in, and the role each gives its entries
// (docs/kit-format.md, "Content folders and roles"). An entry's role follows from
// its path: nothing else may say what an entry is.
var contentRoles = map[string]Role{
	"rules":      RoleRules,
	"dashboards": RoleDashboard,
	"mirror":     RoleMirror,
	"debug":      RoleDebug,
	"authority":  RoleAuthority,
	"files":      RoleFile,
}

// Paths of a kit's OCI image layout.
const (
	ImageLayoutPath = "images/oci-layout"
	ImageIndexPath  = "images/index.json"
	ImageBlobDir    = "images/blobs/sha256/"
)

// RoleOf returns the role of the entry at path p, or why no entry may be
// there: content lives only in images/ (an OCI layout: oci-layout,
// index.json and blobs/sha256/<64 lowercase hex>), rules/, dashboards/,
// mirror/, debug/, authority/ and files/.
func RoleOf(p string) (Role, error) {
	top, rest, ok := strings.Cut(p, "/")
	if !ok {
		return "", fmt.Errorf("path is not inside one of the kit's content folders (images, %s)", contentFolders())
	}
	if top == "images" {
		switch {
		case p == ImageLayoutPath || p == ImageIndexPath:
			return RoleImageIndex, nil
		case strings.HasPrefix(p, ImageBlobDir):
			if !isLowerHex64(strings.TrimPrefix(p, ImageBlobDir)) {
				return "", errors.New("an image blob is named images/blobs/sha256/ and 64 lowercase hex digits")
			}
			return RoleImageBlob, nil
		}
		return "", errors.New("images/ holds only oci-layout, index.json and blobs/sha256/<digest>")
	}
	if r, ok := contentRoles[top]; ok && rest != "" {
		return r, nil
	}
	return "", fmt.Errorf("path is not inside one of the kit's content folders (images, %s)", contentFolders())
}

func contentFolders() string {
	return "rules, dashboards, mirror, debug, authority, files"
}

func isLowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Fold returns the key under which two paths collide on a case-insensitive
// or normalising file system: full Unicode case folding (so "ſ" is "s" and
// "K" (Kelvin) is "k") between canonical decompositions (so NFC and NFD
// spellings are one name). Kits refuse two entries with the same key.
func Fold(p string) string {
	if isASCII(p) {
		return strings.ToLower(p)
	}
	return norm.NFD.String(cases.Fold().String(norm.NFD.String(p)))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
