#ifndef CARTEIRO_CFILESYNC_H
#define CARTEIRO_CFILESYNC_H

/// syncfs(2), which Swift's Glibc module does not export (it needs _GNU_SOURCE): flushes every
/// dirty file and the journal of the file system that holds `fd`, in one call. Carteiro's
/// group commit uses it to make a whole batch of files durable at once.
int carteiro_syncfs(int fd);

/// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV:
/// `path`, relative to the directory open at `dirfd`, opened with `flags` only if no component
/// of it is a symbolic link and it stays beneath that directory. -1 with errno ENOSYS where the
/// kernel (before 5.6) or the C library has no openat2; the caller then walks the path
/// component by component with O_NOFOLLOW.
int carteiro_openat2_beneath(int dirfd, const char *path, int flags);

#endif
