/**
 * Numbered migrations. Each is applied in one transaction together with the bump of
 * PRAGMA user_version, so a crash leaves the database at the old or the new version, never between.
 * Never edit a released migration: add the next number.
 */
import { AUTHZ_SCHEMA } from './schema/authz.js';
import { BACKUP_SCHEMA } from './schema/backups.js';
import { WEB_SCHEMA } from './schema/web.js';
import { ISOLATION_SCHEMA } from './schema/isolation.js';
import { LEASE_KIND_SCHEMA, RESTORE_SCHEMA } from './schema/restores.js';
import { LIMITS_SCHEMA } from './schema/limits.js';

export const MIGRATIONS: readonly string[] = [
  // 1: the first schema.
  `
  CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    disabled_at   TEXT
  );
  -- The SVN/Trac access token of a user: high-entropy, generated, stored as Apache reads it.
  CREATE TABLE access_tokens (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    apache_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL
  );
  CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL,
    title       TEXT NOT NULL,
    visibility  TEXT NOT NULL CHECK (visibility IN ('private','public')),
    state       TEXT NOT NULL CHECK (state IN ('provisioning','active','suspended','deleting','deleted','failed')),
    plan        TEXT NOT NULL DEFAULT 'default',
    quota_bytes INTEGER,
    repo_uuid   TEXT NOT NULL,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  -- A slug is unique among live projects; a deleted project's slug may be taken again.
  CREATE UNIQUE INDEX projects_live_slug ON projects(slug) WHERE state <> 'deleted';
  CREATE TABLE memberships (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner','developer','viewer')),
    PRIMARY KEY (project_id, user_id)
  );
  CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    project_id   INTEGER REFERENCES projects(id),
    payload      TEXT NOT NULL DEFAULT '{}',
    state        TEXT NOT NULL CHECK (state IN ('pending','running','done','failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 8,
    run_after    INTEGER NOT NULL,
    claimed_by   TEXT,
    heartbeat_at INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
  );
  CREATE INDEX jobs_ready ON jobs(state, run_after);
  -- At most one waiting job of a kind per project: a burst of changes coalesces into one run.
  CREATE UNIQUE INDEX jobs_one_pending ON jobs(kind, ifnull(project_id, 0)) WHERE state = 'pending';
  CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
  );
  CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    hash         TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
  );
  CREATE TABLE heartbeats (
    component TEXT PRIMARY KEY,
    at        INTEGER NOT NULL,
    details   TEXT NOT NULL DEFAULT '{}'
  );
  `,
  // 2: authz publishing: published versions, permission history, path rules (src/store/schema/authz.ts).
  AUTHZ_SCHEMA,
  // 3: backups: catalog, leases (src/store/schema/backups.ts).
  BACKUP_SCHEMA,
  // 4: web UI: sessions, throttles, settings, waitlist, invites (src/store/schema/web.ts).
  WEB_SCHEMA,
  // 5: tenant isolation: no write for everyone, every project reconciled once (src/store/schema/isolation.ts).
  ISOLATION_SCHEMA,
  // 6: restores as jobs: restore_jobs, and restores out of the pending-job coalescing (src/store/schema/restores.ts).
  RESTORE_SCHEMA,
  // 7: a lease says whether a backup or a restore holds it (src/store/schema/restores.ts).
  LEASE_KIND_SCHEMA,
  // 8: per-tenant limits: storage usage, per-user project limit, retention indexes (src/store/schema/limits.ts).
  LIMITS_SCHEMA,
];
