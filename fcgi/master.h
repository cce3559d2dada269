/* master: preforks the workers, replaces dead ones, drains and reloads. */
#ifndef KHEISH_FCGI_MASTER_H
#define KHEISH_FCGI_MASTER_H

#include "config.h"

/* Opens the socket, runs the pool until SIGTERM/SIGINT has drained it.
 * Returns the process exit status. */
int master_run(const struct fcgi_config *cfg);

#endif
