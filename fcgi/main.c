/* kheish-fcgi: the control plane's FastCGI worker pool. */
#include "config.h"
#include "log.h"
#include "master.h"

#include <sodium.h>
#include <stdio.h>

int
main(int argc, char **argv)
{
    struct config cfg = {0};
    log_init("kheish-fcgi");
    if (sodium_init() < 0) {
        fprintf(stderr, "kheish-fcgi: libsodium failed to initialise\n");
        return 1;
    }
    if (config_load(&cfg, argc, argv) != 0)
        return 2;
    return master_run(&cfg);
}
