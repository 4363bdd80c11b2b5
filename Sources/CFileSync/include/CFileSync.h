#ifndef CARTEIRO_CFILESYNC_H
#define CARTEIRO_CFILESYNC_H

/// syncfs(2), which Swift's Glibc module does not export (it needs _GNU_SOURCE): flushes every
/// dirty file and the journal of the file system that holds `fd`, in one call. Carteiro's
/// group commit uses it to make a whole batch of files durable at once.
int carteiro_syncfs(int fd);

#endif
