package verify

import "github.com/offkit/offkit/internal/ocilayout"

// Limits of a kit's images/ part (rule 8), the same for verify, install
// and build.
const (
	// MaxImageIndex bounds images/index.json.
	MaxImageIndex = ocilayout.MaxIndexSize
	// MaxImageManifest bounds one blob that is a manifest or an index; such
	// blobs are kept in memory while the kit streams.
	MaxImageManifest = ocilayout.MaxManifestSize
	// MaxImageManifests bounds those blobs together.
	MaxImageManifests = ocilayout.MaxManifestBytes
	// MaxImageDepth bounds the nesting of indexes below images/index.json.
	MaxImageDepth = ocilayout.MaxDepth
	// MaxImageReach bounds the manifests and blobs a registry walks to
	// serve the kit's images, repository by repository.
	MaxImageReach = ocilayout.MaxReach
)
