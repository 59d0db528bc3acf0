import type { BackupSettings } from '../settings/backup.js';
import { fmtBytes } from '../sys/bytes.js';
import type { Volume } from '../sys/volume.js';

export interface Reserve {
  bytes: number;
  inodes: number;
  sameDevice: boolean;
}

/**
 * What must stay free on the backup volume: the larger of a share of the volume and a fixed
 * amount, for bytes and for inodes. When backups share the live data volume, the reserve is
 * multiplied (stricter floor): a refused backup is always better than a live write that fails.
 */
export function reserveFor(v: Volume, s: BackupSettings, onDataVolume: boolean): Reserve {
  const f = onDataVolume ? s.sameDeviceFactor : 1;
  // tmpfs and some filesystems report 0 inodes in total (no limit): then there is nothing to keep.
  const inodes = v.totalInodes > 0 ? Math.max((v.totalInodes * s.reserveInodesPercent) / 100, s.reserveInodes) : 0;
  return {
    bytes: Math.ceil(Math.max((v.totalBytes * s.reservePercent) / 100, s.reserveBytes) * f),
    inodes: Math.ceil(Math.min(inodes * f, v.totalInodes)),
    sameDevice: onDataVolume,
  };
}

export interface Need {
  bytes: number;
  inodes: number;
}

export interface SpaceNumbers {
  neededBytes: number;
  freeBytes: number;
  reserveBytes: number;
  neededInodes: number;
  freeInodes: number;
  reserveInodes: number;
}

/** Undefined when the backup fits with the reserve left free afterwards; else why not. */
export function checkFits(v: Volume, need: Need, r: Reserve): string | undefined {
  if (v.freeBytes - need.bytes < r.bytes) {
    return `needs ${fmtBytes(need.bytes)} but ${fmtBytes(v.freeBytes)} is free on ${v.path} and ${fmtBytes(r.bytes)} must stay free${r.sameDevice ? ' (backups share the live data volume: stricter reserve)' : ''}`;
  }
  if (v.totalInodes > 0 && v.freeInodes - need.inodes < r.inodes) {
    return `needs ${need.inodes} inodes but ${v.freeInodes} are free on ${v.path} and ${r.inodes} must stay free`;
  }
  return undefined;
}

/** Below the floor during a run: the reason, else undefined. */
export function belowFloor(v: Volume, r: Reserve): string | undefined {
  if (v.freeBytes < r.bytes) return `free space on ${v.path} fell to ${fmtBytes(v.freeBytes)}, below the reserve of ${fmtBytes(r.bytes)}`;
  if (v.totalInodes > 0 && v.freeInodes < r.inodes)
    return `free inodes on ${v.path} fell to ${v.freeInodes}, below the reserve of ${r.inodes}`;
  return undefined;
}

/** Space a file takes on disk, in whole 4 KiB blocks (what the volume loses when it is written). */
export const onDisk = (size: number): number => Math.ceil(size / 4096) * 4096 || 4096;
