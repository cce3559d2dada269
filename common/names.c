#include "names.h"

#include <stddef.h>

#define STATUS(name, terminal, active)   name,
#define TERMINAL(name, terminal, active) TERMINAL_##terminal(name)
#define TERMINAL_0(name)
#define TERMINAL_1(name)    name,
#define NAME(name)          name,
#define MODE(id, json, cli) json,

const char *const names_run_statuses[] = {NAMES_RUN_STATUSES(STATUS) NULL};
const char *const names_terminal_statuses[] = {NAMES_RUN_STATUSES(TERMINAL) NULL};
const char *const names_slot_providers[] = {NAMES_SLOT_PROVIDERS(NAME) NULL};
const char *const names_slot_modes[] = {NAMES_SLOT_MODES(NAME) NULL};
const char *const names_permission_modes[] = {NAMES_PERMISSION_MODES(MODE) NULL};
