#define _GNU_SOURCE
#include <unistd.h>
#include "CFileSync.h"

int carteiro_syncfs(int fd) {
    return syncfs(fd);
}
