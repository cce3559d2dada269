/* The FastCGI pool's limits, which kheish-fcgi enforces (fcgi/config.c) and
 * `kheish up` checks before it starts the pool (cli/stack.c). */
#ifndef KHEISH_POOL_H
#define KHEISH_POOL_H

#define POOL_DEFAULT_WORKERS  4
#define POOL_MAX_WORKERS      256
#define POOL_DEFAULT_DRAIN_MS 5000 /* how long /readyz says draining before workers stop */

#endif
