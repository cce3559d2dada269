#include "audit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

json_t *
audit_record(const char *event, const char *method, const char *path, const char *reason,
             const char *origin, const char *remote_addr, const char *required_access)
{
    json_t *r = json_pack("{s:I, s:s, s:o, s:o, s:s}", "timestamp_ms", (json_int_t)util_now_ms(),
                          "event", event, "method", util_json_str(method), "path",
                          util_json_str(path), "reason", reason);
    if (origin) {
        char clean[AUDIT_ORIGIN_MAX_LEN + 1];
        json_object_set_new(r, "origin", util_json_clean(origin, clean, AUDIT_ORIGIN_MAX_LEN));
    }
    if (remote_addr)
        json_object_set_new(r, "remote_addr", util_json_str(remote_addr));
    if (required_access)
        json_object_set_new(r, "required_access", json_string(required_access));
    return r;
}

int
audit_append_file(const char *path, const json_t *record)
{
    char *line = json_dumps(record, JSON_COMPACT);
    if (line == NULL)
        return -1;
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the NUL: the line goes out in one write */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    int rc =
        fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, line, n + 1) == (ssize_t)(n + 1) ? 0 : -1;
    if (fd >= 0)
        close(fd);
    free(line);
    return rc;
}
