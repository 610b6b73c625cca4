// Package safefile reads the files golens is given and writes the files it
// makes without ever harming what is not a file of its own.
//
// Reading takes only regular files and at most a stated number of bytes, so
// /dev/zero given as a config is an error rather than an endless read, and a
// FIFO an error rather than a hang. Writing goes through a temporary file in
// the destination's directory and a rename, so a reader sees the old content
// or the new, never a part; and it replaces only regular files: a directory,
// a device such as /dev/null, a FIFO or a socket (or a symbolic link to one)
// is refused with an error that says what it is. A symbolic link to a regular
// file is followed: its target is replaced and the link kept.
//
// LockDir takes an advisory lock on a directory that the operating system
// releases when the process ends, however it ends, so two processes never
// write one run directory at once.
package safefile
