package debugstore

// The debug store as an OCI artifact (docs/debug.md, "The debug store in a
// registry"): offkit push --root publishes the .debug files of the
// generation a site serves as one image manifest of artifact type
// ArtifactType, with the empty config and one layer per file, of media type
// LayerMediaType, annotated with AnnotationTitle (<aa>/<rest>.debug, the
// name oras pull writes it under) and AnnotationBuildID; layers sorted by
// title. offkit debug fetch --from oci://… picks a layer by its build id
// annotation and fetches that blob alone.
const (
	ArtifactType      = "application/vnd.offkit.debug-store.v1"
	LayerMediaType    = "application/vnd.offkit.debug-file.v1"
	AnnotationTitle   = "org.opencontainers.image.title"
	AnnotationBuildID = "dev.offkit.debug.build-id"
	// ArtifactRepository is the repository the artifact is pushed to, under
	// the target's namespace; ArtifactTag its default tag.
	ArtifactRepository = "debug-store"
	ArtifactTag        = "latest"
	// MaxArtifactManifest bounds the artifact's manifest when fetched
	// (about 40,000 layers).
	MaxArtifactManifest = 16 << 20
	// MaxDebugFile bounds one layer (one .debug file) when fetched from a
	// registry: a size declared above it is refused before anything is
	// read.
	MaxDebugFile = 4 << 30
)

// Title is the layer title of id's debug file: <aa>/<rest>.debug.
func Title(id string) string { return id[:2] + "/" + id[2:] + ".debug" }
