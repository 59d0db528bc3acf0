/** Schema for the web UI. Part of migration list in ../migrations.ts; unreleased, so still editable. */
export const WEB_SCHEMA = `
  -- Browser sessions. The cookie holds a random token; only its SHA-256 is stored, so a copy of
  -- the database does not sign anyone in.
  CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- What the user had typed when their previous session expired: {path, fields}, shown once.
    draft      TEXT
  );
  CREATE INDEX sessions_user ON sessions(user_id);
  -- Fixed-window counters for throttling (login per account and per address, signup per address).
  CREATE TABLE throttles (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
  );
  -- Operator settings (capacity gate) and the server's CSRF secret; values are JSON.
  CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  CREATE TABLE waitlist (
    id         INTEGER PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    invited_at TEXT
  );
  -- Invite codes: shown once to the operator (and logged), stored hashed, used once.
  CREATE TABLE invites (
    id         INTEGER PRIMARY KEY,
    code_hash  TEXT NOT NULL UNIQUE,
    email      TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    used_at    TEXT,
    used_by    TEXT
  );
  -- Disk usage of the data and backup volumes, sampled by the scheduler, for the operator's chart.
  CREATE TABLE disk_samples (
    at          INTEGER NOT NULL,
    volume      TEXT NOT NULL CHECK (volume IN ('data','backup')),
    path        TEXT NOT NULL,
    total_bytes INTEGER NOT NULL,
    free_bytes  INTEGER NOT NULL,
    PRIMARY KEY (volume, at)
  );
`;
