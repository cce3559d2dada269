/*
 * fuzz-backup_tar: the reader of `kheish backup` files (cli/backup_tar.c),
 * which `backup verify` and `restore` run on whatever file they are given.
 * Whatever the bytes, it ends (a member, the end, or an error with a
 * reason), every member name it returns is one backup_name_ok accepts, and
 * a member yields exactly its size before the next.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "backup.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256], buf[4096];
    int fd = memfd_create("backup", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    struct backup_tar t = {.fd = fd};
    int more;
    while ((more = backup_tar_next(&t, err, sizeof err)) == 1) {
        FUZZ_CHECK(backup_name_ok(t.name));
        uint64_t got = 0;
        ssize_t n;
        while ((n = backup_tar_read(&t, buf, sizeof buf)) > 0)
            got += (uint64_t)n;
        if (n < 0)
            break;
        FUZZ_CHECK(got == t.size);
    }
    FUZZ_CHECK(more != -1 || err[0] != '\0');
    close(fd);
    return 0;
}
