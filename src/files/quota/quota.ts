/**
 * The quota files the pre-commit hooks and Trac read: one per project, `<quotaDir>/<slug>`, holding
 * "LIMIT BASE REV TRAC" (the limit in bytes, `default` for the operator's default or `none`; the
 * repository's bytes through revision REV; the Trac environment's bytes), and the operator's
 * default in `<quotaDir>/_default` (a number or `none`; `_` cannot start a slug). The worker is
 * their one writer (src/provision/usage.ts); each is written atomically and checked against the
 * grammar the hook's `case` statements accept before it is published.
 */
import fs from 'node:fs';
import path from 'node:path';
import { assertSlug } from '../../names.js';
import { writeFileAtomic } from '../../sys/fs.js';

export interface QuotaLine {
  /** Bytes; 'default' = the operator's default; null = no limit. */
  limit: number | 'default' | null;
  repoBytes: number;
  repoRev: number;
  tracBytes: number;
}

export const QUOTA_LINE = /^(none|default|0|[1-9][0-9]{0,17}) (0|[1-9][0-9]{0,17}) (0|[1-9][0-9]{0,17}) (0|[1-9][0-9]{0,17})\n$/;
export const DEFAULT_LINE = /^(none|0|[1-9][0-9]{0,17})\n$/;

const num = (n: number): string => {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a byte count: ${n}`);
  return String(n);
};

export function renderQuotaLine(q: QuotaLine): string {
  const limit = q.limit === null ? 'none' : q.limit === 'default' ? 'default' : num(q.limit);
  const text = `${limit} ${num(q.repoBytes)} ${num(q.repoRev)} ${num(q.tracBytes)}\n`;
  if (!QUOTA_LINE.test(text)) throw new Error(`quota line does not parse: ${JSON.stringify(text)}`);
  return text;
}

export function renderDefaultLine(limit: number | null): string {
  const text = `${limit === null ? 'none' : num(limit)}\n`;
  if (!DEFAULT_LINE.test(text)) throw new Error(`default quota line does not parse: ${JSON.stringify(text)}`);
  return text;
}

export const quotaFile = (quotaDir: string, slug: string): string => {
  assertSlug(slug);
  return path.join(quotaDir, slug);
};
export const defaultQuotaFile = (quotaDir: string): string => path.join(quotaDir, '_default');

const check = (re: RegExp) => async (tmp: string) => {
  const text = await fs.promises.readFile(tmp, 'utf8');
  if (!re.test(text)) throw new Error(`quota file ${tmp} does not parse: ${JSON.stringify(text)}`);
};

/** Writes a project's quota file (world-readable: Apache's and Trac's users read it). False when unchanged. */
export function publishQuota(quotaDir: string, slug: string, q: QuotaLine): Promise<boolean> {
  return writeFileAtomic(quotaFile(quotaDir, slug), renderQuotaLine(q), { mode: 0o644, validate: check(QUOTA_LINE) });
}

export function publishDefaultQuota(quotaDir: string, limit: number | null): Promise<boolean> {
  return writeFileAtomic(defaultQuotaFile(quotaDir), renderDefaultLine(limit), { mode: 0o644, validate: check(DEFAULT_LINE) });
}
