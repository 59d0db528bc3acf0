/**
 * The capacity gate (how many projects, how much free disk, who may sign up), the disk samples
 * behind the operator's chart.
 */
import type { Ctx, Actor } from './context.js';
import type { Config } from '../config.js';
import type { DB } from '../store/db.js';
import * as settings from '../store/settings.js';
import { liveProjectCount } from '../store/projects.js';
import * as samples from '../store/samples.js';
import { DomainError, NotAllowedError } from '../errors.js';
import { volumeOf } from '../sys/volume.js';
import { refreshQuotaFiles } from './storage.js';
import { inUnit } from './unit.js';

export { SIGNUP_MODES, type Capacity, type SignupMode } from '../store/settings.js';
export type { DiskSample } from '../store/samples.js';

/** 503: the capacity gate is shut. A switch the operator set, not an outage. */
export class CapacityError extends DomainError {
  constructor(message: string) {
    super(503, 'capacity', message);
  }
}

export interface GateState {
  capacity: settings.Capacity;
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
  const capacity = settings.getCapacity(db);
  const projects = liveProjectCount(db);
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
export type CapacityInput = Omit<settings.Capacity, 'projectStorageLimitBytes' | 'maxProjectsPerUser'> &
  Partial<Pick<settings.Capacity, 'projectStorageLimitBytes' | 'maxProjectsPerUser'>>;

export function setCapacity(ctx: Ctx, actor: Actor, input: CapacityInput): GateState {
  requireOperator(actor);
  const now = settings.getCapacity(ctx.db);
  const c: settings.Capacity = {
    ...input,
    projectStorageLimitBytes: input.projectStorageLimitBytes === undefined ? now.projectStorageLimitBytes : input.projectStorageLimitBytes,
    maxProjectsPerUser: input.maxProjectsPerUser === undefined ? now.maxProjectsPerUser : input.maxProjectsPerUser,
  };
  inUnit(ctx, actor.label, (u) => {
    settings.putCapacity(u.db, c);
    u.audit('capacity.set', 'host', c);
  });
  if (c.projectStorageLimitBytes !== now.projectStorageLimitBytes) refreshQuotaFiles(ctx);
  return gate(ctx.db, ctx.cfg);
}

/** One sample of the data and backup volumes for the operator's chart. */
export function sampleDisk(db: DB, cfg: Config): void {
  const d = volume(cfg.dataDir);
  const b = volume(cfg.backupDir);
  samples.insertDiskSamples(db, Date.now(), [
    { volume: 'data', ...d },
    { volume: 'backup', ...b },
  ]);
}

export const diskSamples = (db: DB, sinceMs: number): samples.DiskSample[] => samples.diskSamples(db, sinceMs);
