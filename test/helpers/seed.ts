/**
 * Test fixtures made through the use cases, as an operator would: a test that needs a user or a
 * project in the database gets them with their audit rows, permission versions and queued jobs,
 * exactly as the API makes them. Nothing is published or woken (the test's host does that, or the
 * test runs the worker itself); credentials reach Apache through the queued sync.
 */
import type { DB } from '../../src/store/db.js';
import { loadConfig, type Config } from '../../src/config.js';
import { noEffects, operator, type Ctx } from '../../src/domain/context.js';
import { makeContext } from '../../src/main/context.js';
import * as projects from '../../src/domain/projects.js';
import * as users from '../../src/domain/users.js';
import * as sessions from '../../src/domain/sessions.js';
import * as capacity from '../../src/domain/capacity.js';
import type { CapacityInput } from '../../src/domain/capacity.js';
import { inUnit } from '../../src/domain/unit.js';
import { setProjectState as moveState } from '../../src/domain/lifecycle.js';
import type { ProjectRow } from '../../src/store/projects.js';
import type { Role, Visibility } from '../../src/names.js';

const contexts = new WeakMap<DB, Ctx>();

/** A use case context over `db` with no effects (`cfg` only matters to what reads it: the capacity gate, hashing). */
export function ctxOf(db: DB, cfg?: Config): Ctx {
  let c = contexts.get(db);
  if (!c || cfg) {
    c = { ...makeContext(db, cfg ?? loadConfig({ KEELSON_DATA_DIR: '/var/tmp/keelson-unused' })), fx: noEffects };
    contexts.set(db, c);
  }
  return c;
}

export const createUser = (db: DB, by: string, u: { name: string; email: string; passwordHash: string; isAdmin?: boolean }) =>
  users.registerUser(ctxOf(db), operator(by), u);

export const createProject = (db: DB, by: string, p: { slug: string; title: string; visibility: Visibility; owner: string }): ProjectRow =>
  projects.createProject(ctxOf(db), operator(by), p);

export const setMember = (db: DB, by: string, slug: string, user: string, role: Role): void =>
  projects.setMember(ctxOf(db), operator(by), slug, user, role);

export const removeMember = (db: DB, by: string, slug: string, user: string): void =>
  projects.removeMember(ctxOf(db), operator(by), slug, user);

export const rotateAccessToken = (db: DB, by: string, name: string): string => users.rotateAccessToken(ctxOf(db), operator(by), name);

export const setUserDisabled = (db: DB, by: string, name: string, disabled: boolean) =>
  users.setUserDisabled(ctxOf(db), operator(by), name, disabled);

export const createApiToken = (db: DB, name: string): string => sessions.createApiToken(ctxOf(db), name);

/** Moves a project's state as the reconciler and restores do (a suspension records a permission version). */
export const setProjectState = (db: DB, id: number, state: ProjectRow['state'], by = 'system'): void =>
  inUnit(ctxOf(db), by, (u) => moveState(u, id, state));

export const setCapacity = (db: DB, by: string, c: CapacityInput): void => void capacity.setCapacity(ctxOf(db), operator(by), c);
