/** Debian's chromium driven by playwright-core, with the flags this machine needs, and page artifacts. */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { PROJECT_ROOT } from '../../src/paths.js';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = path.join(PROJECT_ROOT, 'dist', 'test-artifacts', 'browser');

export async function launch(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/install-system.sh (Debian package chromium)`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // playwright gives every launch a new empty --user-data-dir and --headless; the rest keep
  // Chromium off the network this machine does not have (FIELD-NOTES / env notes).
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Bytes of every HTML page and static asset the browser loaded, by path: checked against the budget. */
export const sizes = new Map<string, number>();
/** Responses whose body could not be read (so not measured), with why: the budget test names them. */
export const unread: string[] = [];
/** Every screenshot written in this process, by file (the budget test checks each is a real image). */
export const shots: string[] = [];

export async function context(browser: Browser, width: number): Promise<BrowserContext> {
  const ctx = await browser.newContext({ viewport: { width, height: width < 500 ? 812 : 900 } });
  ctx.on('response', (r: Response) => {
    const type = r.request().resourceType();
    if (type !== 'document' && type !== 'stylesheet' && type !== 'script') return;
    if (r.status() >= 300 && r.status() < 400) return;
    const key = `${type} ${new URL(r.url()).pathname}`;
    r.body()
      .then((b) => {
        sizes.set(key, Math.max(sizes.get(key) ?? 0, b.length));
      })
      .catch((e: unknown) => unread.push(`${key}: ${String(e).split('\n')[0]}`));
  });
  return ctx;
}

/** A full-page screenshot under dist/test-artifacts/browser/. */
export async function shot(page: Page, name: string): Promise<string> {
  // On a phone-sized viewport every page must fit its width (tables scroll inside their box).
  const width = page.viewportSize()?.width ?? 0;
  if (width < 500) {
    const over = await horizontalOverflow(page);
    if (over > 0) throw new Error(`${name}: the page is ${over} px wider than the ${width} px viewport`);
  }
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
  return file;
}

/** The page fits its viewport: nothing sticks out sideways (usable at 375 px). */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}
