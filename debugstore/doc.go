// Package debugstore reads the build ids that name debug files, for the
// `.build-id` store that kits carry and that gdb, elfutils and debuginfod
// clients look files up in (docs/kit-format.md, debug/.build-id/<aa>/<rest>.debug).
//
// ReadBuildID reads an ELF file's ids without trusting any length in it:
//
//   - The GNU build id is the descriptor of a note of owner "GNU" and type 3
//     (NT_GNU_BUILD_ID), found in PT_NOTE segments and SHT_NOTE sections of
//     ELF files of either class (32 or 64 bits) and either byte order. It is
//     printed as lowercase hex. Any length from 1 to MaxBuildIDBytes is an id:
//     8 and 16 bytes (musl toolchains, --build-id=md5, --build-id=0x…) as well
//     as the usual 20 (sha1). Two notes with different GNU ids are an error.
//   - The Go build id is the descriptor of a note of owner "Go" and type 4
//     (.note.go.buildid), or else the string `\xff Go build ID: "…"` in the
//     first GoScanBytes of .text (or of the file when it has no .text).
//   - A file without a GNU build id note gets a fallback id that cannot be
//     mistaken for one: "text-sha256:" and the SHA-256 of its .text section
//     (BuildID.TextSHA256), and BuildID.GNU stays empty.
//
// Rules and limits, each an error wrapping errdef.ErrInvalid (exit 11) that
// names the segment, section or note at fault:
//
//   - The ELF header, the program header table and the section header table
//     must lie inside the file (offsets and sizes are added with overflow
//     checks), with entries at least as large as the ELF structures, at most
//     MaxSegments segments and MaxSections sections (extended numbering,
//     e_shnum 0 and e_phnum PN_XNUM, is followed within the same limits).
//   - A note segment or section must lie inside the file and be at most
//     MaxNoteBytes long. Its notes are 4-byte aligned, or 8-byte aligned when
//     the segment's p_align or section's sh_addralign is 8 (as in 64-bit
//     PT_NOTE segments of .note.gnu.property); an alignment below 4 counts as
//     4, any other is an error, as readelf treats it. Each note's header,
//     padded name and padded descriptor must fit in what remains of it.
//   - Nothing is allocated from a declared length: the header tables and
//     the notes are read front to back through small fixed buffers, only
//     names of 4 bytes are read, and only the descriptors of build id notes,
//     at most MaxBuildIDBytes (GNU) or MaxGoBuildIDBytes (Go) long. .text is
//     hashed as a stream.
//   - A core file (ET_CORE) is read like any other; its notes carry no
//     build id (the executable's is in its memory), so it usually has none.
//   - Compressed sections (SHF_COMPRESSED) are never inflated: a compressed
//     note section is skipped, a compressed .text gives no fallback id.
//
// A file that does not start with the ELF magic is ErrNotELF (which wraps
// errdef.ErrInvalid); a read that fails for another reason than the end of
// the file wraps errdef.ErrIO (exit 12).
package debugstore
