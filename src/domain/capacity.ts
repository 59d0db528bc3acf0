/**
 * The capacity gate (how many projects, how much free disk, who may sign up), the disk samples
 * behind the operator's chart, and a project's storage use.
 */
import path from 'node:path';
import type { Ctx, Actor } from './context.js';
import type { Config } from '../config.js';
import { layout } from '../config.js';
import type { DB } from '../store/db.js';
import * as web from '../store/web.js';
import { DomainError, NotAllowedError } from '../errors.js';
import { volumeOf } from '../sys/volume.js';
import { du } from '../sys/du.js';

export { SIGNUP_MODES, type Capacity, type SignupMode, type DiskSample } from '../store/web.js';

/** 503: the capacity gate is shut. A switch the operator set, not an outage. */
export class CapacityError extends DomainError {
  constructor(message: string) {
    super(503, 'capacity', message);
  }
}

export interface GateState {
  capacity: web.Capacity;
  projects: number;
  freeBytes: number;
  /** Why new projects are not taken now (null: they are). */
  full: string | null;
  /** Whether a new account may be made without an invite. */
  signupOpen: boolean;
}

/** Free and total bytes of the volume holding `dir` (what an unprivileged writer can use). */
export function volume(dir: string): { path: string; totalBytes: number; freeBytes: number } {
  const v = volumeOf(dir);
  return { path: v.path, totalBytes: v.totalBytes, freeBytes: v.freeBytes };
}

export function gate(db: DB, cfg: Config): GateState {
  const capacity = web.getCapacity(db);
  const projects = web.liveProjectCount(db);
  const freeBytes = volume(cfg.dataDir).freeBytes;
  let full: string | null = null;
  if (capacity.maxProjects !== null && projects >= capacity.maxProjects) full = 'this host has reached its limit of projects';
  else if (freeBytes < capacity.minFreeBytes) full = 'this host is low on disk space';
  return { capacity, projects, freeBytes, full, signupOpen: capacity.signupMode === 'open' && full === null };
}

const requireOperator = (actor: Actor): void => {
  if (!actor.admin) throw new NotAllowedError('this needs an operator (admin) account');
};

/** The operator's capacity settings; a field left out keeps its current value. */
export type CapacityInput = Omit<web.Capacity, 'projectStorageLimitBytes' | 'maxProjectsPerUser'> &
  Partial<Pick<web.Capacity, 'projectStorageLimitBytes' | 'maxProjectsPerUser'>>;

export function setCapacity(ctx: Ctx, actor: Actor, input: CapacityInput): GateState {
  requireOperator(actor);
  const now = web.getCapacity(ctx.db);
  const c: web.Capacity = {
    ...input,
    projectStorageLimitBytes: input.projectStorageLimitBytes === undefined ? now.projectStorageLimitBytes : input.projectStorageLimitBytes,
    maxProjectsPerUser: input.maxProjectsPerUser === undefined ? now.maxProjectsPerUser : input.maxProjectsPerUser,
  };
  web.setCapacity(ctx.db, actor.label, c);
  return gate(ctx.db, ctx.cfg);
}

/** One sample of the data and backup volumes for the operator's chart. */
export function sampleDisk(db: DB, cfg: Config): void {
  const d = volume(cfg.dataDir);
  const b = volume(cfg.backupDir);
  web.insertDiskSamples(db, Date.now(), [
    { volume: 'data', ...d },
    { volume: 'backup', ...b },
  ]);
}

export const diskSamples = (db: DB, sinceMs: number): web.DiskSample[] => web.diskSamples(db, sinceMs);

const usageCache = new Map<string, { at: number; bytes: number }>();
/** Repository + Trac environment size of a project; cached for a minute (a walk per page view would be wasteful). */
export async function projectUsage(cfg: Config, slug: string): Promise<number> {
  const l = layout(cfg);
  const key = `${cfg.dataDir}:${slug}`;
  const hitc = usageCache.get(key);
  if (hitc && Date.now() - hitc.at < 60_000) return hitc.bytes;
  const bytes = (await du(path.join(l.svnRoot, slug))) + (await du(path.join(l.tracRoot, slug)));
  // A project still being made has nothing on disk yet: not worth remembering.
  if (bytes > 0) usageCache.set(key, { at: Date.now(), bytes });
  return bytes;
}
