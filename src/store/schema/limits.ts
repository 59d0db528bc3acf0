/**
 * Migration 8: per-tenant limits (issue 17).
 *
 * - `users.max_projects`: a per-user override of the operator's projects-per-user limit (NULL: the
 *   operator's default from the capacity setting).
 * - `projects.quota_bytes` (from migration 1, never read before) is the project's storage limit
 *   override (NULL: the operator's default). Its usage is kept as the repository's size measured
 *   through revision `repo_rev` (`repo_bytes`) and the Trac environment's (`trac_bytes`), measured
 *   at `usage_at` (ms); the pre-commit hook adds the revisions after `repo_rev` itself.
 * - Indexes for the retention sweeps and the per-user project count.
 */
export const LIMITS_SCHEMA = `
  ALTER TABLE users ADD COLUMN max_projects INTEGER;
  ALTER TABLE projects ADD COLUMN repo_bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE projects ADD COLUMN repo_rev INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE projects ADD COLUMN trac_bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE projects ADD COLUMN usage_at INTEGER;
  CREATE INDEX audit_log_at ON audit_log(at);
  CREATE INDEX memberships_user ON memberships(user_id, role);
  CREATE INDEX sessions_user_created ON sessions(user_id, created_at);
  CREATE INDEX sessions_expires ON sessions(expires_at);
  CREATE INDEX throttles_window ON throttles(window_start);
`;
