/**
 * Migration 5: tenant isolation. Existing data is brought under the new rules:
 * - a path rule giving everyone (`*`, anonymous included) write access becomes read access;
 * - every live project is reconciled once: owners lose TRAC_ADMIN (Trac permissions converge again,
 *   hence the reset of trac_perm_version), repositories and environments get their new owners and
 *   modes, and whatever Keelson does not own (plugins, templates, hooks, repository rows) goes.
 */
export const ISOLATION_SCHEMA = `
  UPDATE path_rules SET access = 'r' WHERE subject = '*' AND access = 'rw';
  UPDATE projects SET trac_perm_version = NULL;
  INSERT OR IGNORE INTO jobs (kind, project_id, payload, state, run_after, created_at)
    SELECT 'reconcile_project', id, '{}', 'pending', 0, CAST(strftime('%s', 'now') AS INTEGER) * 1000
    FROM projects WHERE state IN ('provisioning', 'active', 'suspended', 'failed');
`;
