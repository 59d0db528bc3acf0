/**
 * Migration 3: backups (src/backup).
 *
 * - `backups` is the catalog: one row per attempt, refused and failed ones included, so the
 *   operator sees what was refused and why (needed/free/reserve in bytes and inodes).
 *   project_id NULL is Keelson's own database. `base_id` links an incremental to the backup it
 *   was built on (a chain: full <- incremental <- incremental ...).
 * - `backup_leases`: one backup per scope (a project, or Keelson's own database) at a time. A
 *   lease is a row with a holder and an expiry, renewed while the backup runs; a holder that died
 *   (its process is gone, or the lease expired) is taken over, so a crash never blocks later backups
 *   the way a left-behind lock file would.
 */
export const BACKUP_SCHEMA = `
  CREATE TABLE backups (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER REFERENCES projects(id),
    slug            TEXT,
    repo_uuid       TEXT,
    kind            TEXT NOT NULL CHECK (kind IN ('full','incremental')),
    base_id         INTEGER REFERENCES backups(id),
    rev_from        INTEGER,
    rev_to          INTEGER,
    state           TEXT NOT NULL CHECK (state IN ('running','verifying','verified','refused','failed','aborted','expired')),
    reason          TEXT,
    path            TEXT,
    staging_path    TEXT,
    bytes           INTEGER NOT NULL DEFAULT 0,
    logical_bytes   INTEGER NOT NULL DEFAULT 0,
    files           INTEGER NOT NULL DEFAULT 0,
    manifest_sha256 TEXT,
    fingerprint     TEXT,
    needed_bytes    INTEGER,
    free_bytes      INTEGER,
    reserve_bytes   INTEGER,
    needed_inodes   INTEGER,
    free_inodes     INTEGER,
    reserve_inodes  INTEGER,
    trigger         TEXT NOT NULL DEFAULT 'manual',
    actor           TEXT NOT NULL DEFAULT 'system',
    holder          TEXT,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    duration_ms     INTEGER,
    confirmed_at    TEXT,
    test_restored_at TEXT,
    test_restore_ok INTEGER
  );
  CREATE INDEX backups_project ON backups(project_id, id);
  CREATE INDEX backups_state ON backups(state);

  CREATE TABLE backup_leases (
    scope      TEXT PRIMARY KEY,
    backup_id  INTEGER NOT NULL,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
`;
