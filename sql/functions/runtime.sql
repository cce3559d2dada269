-- Runtime settings (contract §4): the RunTimeView and its changes. Each
-- change appends a revision to runtime_revisions (migration 001); the newest
-- is current.

-- The two-argument forms of the view and the change (before the routes),
-- and the change whose value was text (before values of any JSON type).
DROP FUNCTION IF EXISTS kheish_runtime_view(text, text);
DROP FUNCTION IF EXISTS kheish_runtime_change(text, text, bigint, bigint, text, text);
DROP FUNCTION IF EXISTS kheish_runtime_change(text, text, bigint, bigint, text, text, jsonb, jsonb);

-- GET /v1/runtime. workspace_root, state_root and routes are the host's own
-- (the process that asks reports its paths, '' for none, and its routes
-- file's routes: {default_route, routes[]}, {} for none).
CREATE OR REPLACE FUNCTION kheish_runtime_view(workspace_root text, state_root text, routes jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET plan_cache_mode = force_generic_plan
    AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object(
        'workspace_root', nullif(workspace_root, ''), 'state_root', nullif(state_root, ''),
        'default_route', routes->'default_route',
        'route_id', coalesce(routes#>'{default_route,route_id}', st->'route_id'),
        'provider', coalesce(routes#>'{default_route,provider}', st->'provider'),
        'model', coalesce(routes#>'{default_route,model}', st->'model'),
        'routes', coalesce(routes->'routes', '[]'), 'route_diagnostics', '[]'::jsonb,
        'permission_mode', st->'permission_mode', 'system_prompt', st->'system_prompt',
        'hooks', st->'hooks', 'debug_level', st->'debug_level',
        'debug_capture', jsonb_build_object('ttl_ms', 604800000, 'encryption', 'none',
            'key_id', NULL, 'redaction_token_source', 'none'),
        'mcp', jsonb_build_object('servers', '[]'::jsonb), 'skills', '[]'::jsonb,
        'learning_policy', st->'learning_policy', 'run_memory_policy', st->'run_memory_policy',
        'tool_runtime_limits', st->'tool_runtime_limits',
        'subagent_policy', jsonb_build_object('max_child_depth', 4,
            'max_live_children_per_parent', 6, 'max_live_descendants_per_root', 24,
            'max_spawns_per_run', 6),
        'scheduler_policy', jsonb_build_object('enabled', false),
        'config', jsonb_build_object('revision', revision, 'updated_at_ms', updated_at_ms,
            'persisted', true, 'history_len', (SELECT count(*) FROM runtime_revisions),
            'history_limit', 100, 'store_path', NULL))
    FROM (SELECT r.revision, r.updated_at_ms, r.settings AS st FROM runtime_revisions r
          ORDER BY r.revision DESC LIMIT 1) cur);
END
$$;
COMMENT ON FUNCTION kheish_runtime_view(text, text, jsonb) IS
    'GET /v1/runtime: the RuntimeSettingsView from the newest revision and the asking host''s paths and routes.';

-- A change of setting set_key to set_value, a JSON value checked by the
-- caller (POST /v1/runtime/permission-mode, /debug-level, /tool-limits,
-- /permission-rules), or, for set_key 'rollback', back to target_revision's
-- settings (NULL: the one before the current). expected_revision, when not
-- NULL, must be the current revision. Writers queue on an advisory lock, so
-- that check is exact. Appends the new revision and runtime_updated.
-- Returns {result: ok, view, settings} (settings: every setting of the new
-- revision, its permission_rules among them), or {result:
-- revision_conflict} or {result: revision_not_found}. actor's action is
-- recorded (its target the new revision) and the revision links to it.
CREATE OR REPLACE FUNCTION kheish_runtime_change(set_key text, set_value jsonb,
                                                 expected_revision bigint,
                                                 target_revision bigint, workspace_root text,
                                                 state_root text, routes jsonb, actor jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
DECLARE
    cur bigint;
    rollback boolean := set_key = 'rollback';
    v jsonb;
    act bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7739075311862628354);
    SELECT max(r.revision) INTO cur FROM runtime_revisions r;
    IF expected_revision IS NOT NULL AND expected_revision <> cur THEN
        RETURN kheish_admin_answer(actor, 'runtime_change', NULL, NULL, NULL,
                                   jsonb_build_object('result', 'revision_conflict'));
    END IF;
    IF rollback AND NOT EXISTS (SELECT 1 FROM runtime_revisions t
                                WHERE t.revision = coalesce(target_revision, cur - 1)) THEN
        RETURN kheish_admin_answer(actor, 'runtime_change', NULL, NULL, NULL,
                                   jsonb_build_object('result', 'revision_not_found'));
    END IF;
    act := kheish_admin_action(actor, 'runtime_change', NULL, NULL, (cur + 1)::text, 'ok');
    INSERT INTO runtime_revisions (revision, updated_at_ms, source, setting,
                                   rollback_of_revision, settings, admin_action_id)
        SELECT cur + 1, kheish_now_ms(), 'runtime_api', set_key,
               CASE WHEN rollback THEN t.revision END,
               CASE WHEN rollback THEN t.settings
                    ELSE c.settings || jsonb_build_object(set_key, set_value) END,
               act
        FROM runtime_revisions c LEFT JOIN runtime_revisions t
            ON rollback AND t.revision = coalesce(target_revision, cur - 1)
        WHERE c.revision = cur AND (NOT rollback OR t.revision IS NOT NULL);
    IF NOT FOUND THEN -- checked above, under the lock
        RAISE EXCEPTION 'runtime revision % vanished', coalesce(target_revision, cur - 1);
    END IF;
    v := kheish_runtime_view(workspace_root, state_root, routes);
    PERFORM kheish_append_events(jsonb_build_array(kheish_stream_event('runtime_updated', NULL,
                                     NULL, jsonb_build_object('runtime', v))), '[]');
    RETURN jsonb_build_object('result', 'ok', 'view', v, 'settings',
        (SELECT n.settings FROM runtime_revisions n WHERE n.revision = cur + 1));
END
$$;
COMMENT ON FUNCTION kheish_runtime_change(text, jsonb, bigint, bigint, text, text, jsonb, jsonb) IS
    'POST /v1/runtime/permission-mode, /debug-level, /tool-limits, /permission-rules, /rollback: '
    'appends a revision, recording actor''s action (runtime_revisions.admin_action_id).';
