/* views: how pretty mode lays out each API document (see output.h). */
#ifndef KHEISH_CLI_VIEWS_H
#define KHEISH_CLI_VIEWS_H

#include "output.h"

extern const struct output_view view_status;
extern const struct output_view view_runtime;
extern const struct output_view view_revisions;
extern const struct output_view view_session;
extern const struct output_view view_session_list;
extern const struct output_view view_session_events;
extern const struct output_view view_interrupt;
extern const struct output_view view_run;
extern const struct output_view view_run_list;
extern const struct output_view view_run_events;
extern const struct output_view view_external_actions;
extern const struct output_view view_approval;
extern const struct output_view view_approval_list;
extern const struct output_view view_approvals_resolved;
extern const struct output_view view_secret;
extern const struct output_view view_secret_list;
extern const struct output_view view_accepted;

#endif
