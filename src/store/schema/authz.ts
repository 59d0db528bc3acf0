/**
 * Migration 2: authz publishing.
 *
 * - `projects.perm_version` counts changes to a project's permission state (members, roles,
 *   visibility, path rules, suspension); it is bumped in the same transaction as the change.
 * - `permission_history` keeps a snapshot of that state for every version: who changed what and
 *   when, and what a revert goes back to.
 * - `projects.published_version` is the version whose rendering is on disk; a publisher renames
 *   its file into place only inside a write transaction that finds no newer version published,
 *   so an older state can never replace a newer one, whichever process publishes.
 * - `authz_publishes` records each publish: version, checksum, time, publisher.
 * - `path_rules`: per-path grants an owner sets (subject: @role, user name or *).
 */
export const AUTHZ_SCHEMA = `
  ALTER TABLE projects ADD COLUMN perm_version INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE projects ADD COLUMN published_version INTEGER;
  ALTER TABLE projects ADD COLUMN published_checksum TEXT;
  ALTER TABLE projects ADD COLUMN published_at TEXT;
  ALTER TABLE projects ADD COLUMN trac_perm_version INTEGER;

  CREATE TABLE path_rules (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    access     TEXT NOT NULL CHECK (access IN ('rw', 'r', '')),
    PRIMARY KEY (project_id, path, subject)
  );

  CREATE TABLE permission_history (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    summary    TEXT NOT NULL,
    snapshot   TEXT NOT NULL,
    UNIQUE (project_id, version)
  );

  CREATE TABLE authz_publishes (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    checksum     TEXT NOT NULL,
    changed      INTEGER NOT NULL,
    published_at TEXT NOT NULL,
    publisher    TEXT NOT NULL
  );
  CREATE INDEX authz_publishes_project ON authz_publishes(project_id, id);

  -- Projects that existed before this migration start at version 1 with their current state.
  INSERT INTO permission_history (project_id, version, at, actor, action, summary, snapshot)
    SELECT p.id, 1, p.updated_at, 'migration', 'baseline', 'state at upgrade',
      json_object(
        'visibility', p.visibility,
        'suspended', json(CASE WHEN p.state = 'suspended' THEN 'true' ELSE 'false' END),
        'members', (SELECT json_group_array(json_object('user', u.name, 'role', m.role))
                      FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.project_id = p.id),
        'rules', json('[]'))
    FROM projects p;
`;
