/**
 * What every use case is given: the store, the configuration, and the effects it may ask for
 * without knowing how they happen (main wires them: the credentials writer, the worker's wake-up).
 */
import type { DB } from '../store/db.js';
import type { Config } from '../config.js';
import type { BackupPort } from './ports.js';

export interface Effects {
  /** A user's credential row changed (created, rotated, disabled): published before the use case returns. */
  credentialChanged(user: string): void;
  /** Work was queued: an in-process worker starts on it at once. */
  enqueued(): void;
}

export interface Ctx {
  db: DB;
  cfg: Config;
  fx: Effects;
  /** Backups and restores: the engine, its queue and its restores (src/main/ports.ts wires them). */
  backups: BackupPort;
}

/**
 * Who is acting. Admin API tokens act as operators; a signed-in web user acts as themselves.
 */
export interface Actor {
  kind: 'token' | 'user' | 'system';
  /** Audit name: `token:NAME`, `user:NAME`, `cli`, `signup:ADDRESS`. */
  label: string;
  /** The user's name when kind is 'user'. */
  user?: string;
  admin: boolean;
}

/** The CLI and jobs act as the operator. */
export const operator = (label: string): Actor => ({ kind: 'system', label, admin: true });

/** Effects for a process that has no credentials writer or worker of its own (tests, tools). */
export const noEffects: Effects = { credentialChanged: () => {}, enqueued: () => {} };
