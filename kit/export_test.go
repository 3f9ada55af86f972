package kit

// SetContentFirst makes Build write the content first (true: each file's
// digest taken as it is packed) or hash the listed files first (false),
// whatever their share of the kit: the two must write the same bytes.
func SetContentFirst(opts *BuildOptions, first bool) {
	opts.order = orderHashFirst
	if first {
		opts.order = orderContentFirst
	}
}
