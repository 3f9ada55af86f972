// Package plainfile opens files for reading that must be regular files:
// without waiting on a named pipe put in their place, and with fewer
// system calls than os.Open.
//
// os.Open tries every file it opens with the runtime's poller: it sets
// O_NONBLOCK (two fcntl(2)), asks epoll(7) to watch the descriptor, which
// fails for a regular file, and clears O_NONBLOCK again (two more fcntl).
// Reading a tree of many small files, those five calls are most of the
// system calls made per file besides the read itself. OpenRegular makes
// the open(2), checks the descriptor with one fstat(2), clears O_NONBLOCK
// and hands it to os.NewFile, which leaves the poller alone: the *os.File
// reads and closes as os.Open's does.
package plainfile
