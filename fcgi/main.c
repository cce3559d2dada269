/* kheish-fcgi: the control plane's FastCGI worker pool. */
#include "config.h"
#include "log.h"
#include "master.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    struct fcgi_config cfg = {0};
    log_init("kheish-fcgi");
    if (sodium_init() < 0) {
        fprintf(stderr, "kheish-fcgi: libsodium failed to initialise\n");
        return 1;
    }
    int rc = fcgi_config_load(&cfg, argc, argv) != 0 ? 2 : master_run(&cfg);
    routes_free(&cfg.routes);
    free(cfg.runtime_routes);
    sealed_key_wipe(&cfg.master_key);
    return rc;
}
