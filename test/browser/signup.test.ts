import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startHost, svn, until, type TestHost } from '../helpers/host.js';
import { ARTIFACTS, context, horizontalOverflow, launch, shot, shots, sizes, unread } from './browser.js';

/**
 * The whole journey in a real browser (Debian's chromium through playwright-core) against a real
 * host (API + web UI, worker, Apache with Subversion and Trac): a person signs up with a first
 * project and checks it out with the real svn client, adds a teammate, the teammate signs in and
 * sees it, and an operator sees the project, its backup and the disk chart. Every page is
 * screenshotted under dist/test-artifacts/browser/ and measured against the size budget.
 */

/** Page size budget (uncompressed bytes): every HTML page, the one stylesheet, the one script. */
export const BUDGET = { document: 40 * 1024, stylesheet: 8 * 1024, script: 12 * 1024 };

const PASSWORD = 'a sturdy pass phrase';
const PASSWORD2 = 'another sturdy phrase';

describe('signup to checkout, in a browser', () => {
  let h: TestHost;
  let browser: Browser;
  let ada: Page;
  let bea: Page;
  let olga: Page;
  let adaToken = '';
  let checkoutUrl = '';
  const url = (p: string) => `${h.run.url}${p}`;
  const projectCount = () => (h.run.db.prepare(`SELECT count(*) AS n FROM projects WHERE state <> 'deleted'`).get() as { n: number }).n;
  const text = async (page: Page, sel: string) => (await page.locator(sel).first().textContent())?.trim() ?? '';

  before(async () => {
    // The scheduler runs here (disk sampler every 2 s) so the chart has real samples.
    h = await startHost('browser', { scheduler: true }, { KEELSON_DISK_SAMPLE_CRON: '*/2 * * * * *' });
    const r = await h.api.post('/api/v1/users').send({ name: 'olga', email: 'olga@example.com', password: PASSWORD, admin: true });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    browser = await launch();
    ada = await (await context(browser, 375)).newPage();
    bea = await (await context(browser, 375)).newPage();
    olga = await (await context(browser, 1280)).newPage();
  });
  after(async () => {
    await browser?.close();
    await h?.stop();
    const report = Object.fromEntries([...sizes.entries()].sort());
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    fs.writeFileSync(path.join(ARTIFACTS, 'page-sizes.json'), JSON.stringify({ budget: BUDGET, sizes: report }, null, 2) + '\n');
  });

  it('a new user signs up with a first project, sees the checkout command, and svn checkout works with it', async () => {
    await ada.goto(url('/'));
    assert.equal(new URL(ada.url()).pathname, '/signup');
    await shot(ada, '01-signup');
    // Labelled fields: the test finds every input by its label.
    await ada.getByLabel('User name').fill('ada');
    await ada.getByLabel('Email').fill('ada@example.com');
    await ada.getByLabel('Password').fill(PASSWORD);
    await ada.getByLabel('Project name').fill('first-proj');
    await ada.getByLabel('Title').fill('First project');
    await ada.getByLabel('Visibility').selectOption('private');
    await ada.getByRole('button', { name: 'Sign up' }).click();
    await ada.waitForURL(/\/p\/first-proj$/);
    // The access token and the checkout command, shown once.
    adaToken = await text(ada, '#access-token');
    assert.match(adaToken, /^\S{20,}$/);
    const cmd = await text(ada, '#checkout');
    const m = /^svn checkout (\S+) --username ada$/.exec(cmd);
    assert.ok(m, `checkout command: ${cmd}`);
    checkoutUrl = m[1]!;
    assert.equal(checkoutUrl, `${h.cfg.publicUrl}/svn/first-proj`);
    assert.equal(await text(ada, '#welcome-checkout'), cmd);
    assert.equal(await horizontalOverflow(ada), 0);
    // The page follows the project to 'active' by itself.
    await until('first-proj active on the page', async () => (await text(ada, '[data-state-of="first-proj"]')) === 'active', 30_000);
    await shot(ada, '02-project-after-signup');

    const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'wc-browser-'));
    try {
      const co = await svn(['checkout', checkoutUrl, wc], { user: 'ada', password: adaToken });
      assert.equal(co.code, 0, co.stderr);
      assert.ok(fs.existsSync(path.join(wc, 'trunk')), 'the standard layout is checked out');
      // The Trac link on the page answers for her too.
      const trac = await ada.locator('#trac-link').getAttribute('href');
      assert.equal(trac, `${h.cfg.publicUrl}/trac/first-proj`);
    } finally {
      fs.rmSync(wc, { recursive: true, force: true });
    }
  });

  it('the dashboard lists the project with state, role, checkout command, Trac link and storage', async () => {
    await ada.goto(url('/dashboard'));
    const card = ada.locator('li.project', { hasText: 'first-proj' });
    assert.equal(await card.locator('.state').textContent(), 'active');
    assert.equal(await card.locator('.role').textContent(), 'owner');
    assert.equal(await card.locator('code').textContent(), `svn checkout ${checkoutUrl}`);
    assert.match((await card.textContent()) ?? '', /\d+(\.\d)? (KiB|MiB) of 2\.0 GiB used/);
    assert.equal(await card.getByRole('link', { name: /Trac:/ }).getAttribute('href'), `${h.cfg.publicUrl}/trac/first-proj`);
    assert.equal(await horizontalOverflow(ada), 0);
    await shot(ada, '03-dashboard-owner');
  });

  it('the owner adds a second user as developer; the second user signs in and sees the project', async () => {
    // bea signs up (no project), then signs out.
    await bea.goto(url('/signup'));
    await bea.getByLabel('User name').fill('bea');
    await bea.getByLabel('Email').fill('bea@example.com');
    await bea.getByLabel('Password').fill(PASSWORD2);
    await bea.getByRole('button', { name: 'Sign up' }).click();
    await bea.waitForURL(/\/dashboard$/);
    const beaToken = await text(bea, '#access-token');
    assert.match(await text(bea, 'main'), /not in any project yet/);
    await bea.getByRole('button', { name: /Sign out/ }).click();
    await bea.waitForURL(/\/login\?bye=1$/);

    // ada adds bea as developer on the project page.
    await ada.goto(url('/p/first-proj'));
    await ada.locator('#add-user').fill('bea');
    await ada.locator('#add-role').selectOption('developer');
    await ada.getByRole('button', { name: 'Add member' }).click();
    await ada.waitForURL(/\/p\/first-proj$/);
    const row = ada.locator('#members tr', { hasText: 'bea' });
    assert.equal(await row.locator('select').inputValue(), 'developer');
    // An unknown user name is refused next to the field.
    await ada.locator('#add-user').fill('nosuchuser');
    await ada.getByRole('button', { name: 'Add member' }).click();
    assert.match(await text(ada, '#add-user-err'), /there is no user nosuchuser/);
    await ada.goto(url('/p/first-proj'));
    await shot(ada, '04-project-owner');

    // bea signs in with the keyboard only: Tab to the field, type, Tab, type, Enter.
    await bea.goto(url('/login'));
    for (let i = 0; i < 20 && (await bea.evaluate(() => document.activeElement?.id)) !== 'login-username'; i++)
      await bea.keyboard.press('Tab');
    assert.equal(await bea.evaluate(() => document.activeElement?.id), 'login-username');
    await bea.keyboard.type('bea');
    await bea.keyboard.press('Tab');
    await bea.keyboard.type(PASSWORD2);
    await bea.keyboard.press('Enter');
    await bea.waitForURL(/\/dashboard$/);
    const card = bea.locator('li.project', { hasText: 'first-proj' });
    assert.equal(await card.locator('.role').textContent(), 'developer');
    await shot(bea, '05-dashboard-developer');
    // As developer she sees the members but no controls.
    await bea.goto(url('/p/first-proj'));
    assert.equal(await text(bea, '#my-role'), 'developer');
    assert.equal(await bea.locator('#add-user').count(), 0);
    assert.equal(await bea.locator('form[action$="/delete"]').count(), 0);
    assert.match(await text(bea, 'main'), /Only owners can change members/);
    await shot(bea, '06-project-developer');
    // And Subversion lets her in with her token once the change is published.
    await until(
      'bea can read the repository',
      async () => (await svn(['info', checkoutUrl], { user: 'bea', password: beaToken })).code === 0,
      20_000,
    );
  });

  it('the owner edits path rules through the authz API; a developer sees them read-only', async () => {
    await ada.goto(url('/p/first-proj'));
    await ada.getByRole('button', { name: 'Add a rule' }).click();
    await ada.getByLabel('Path of rule 1').fill('/trunk/secret');
    await ada.getByLabel('Who, rule 1').fill('@developer');
    await ada.getByLabel('Access for rule 1').selectOption('');
    await ada.getByRole('button', { name: 'Save path rules' }).click();
    await ada.getByText('Path rules saved.').waitFor();
    const r = await h.api.get('/api/v1/projects/first-proj/path-rules');
    assert.deepEqual(r.body.rules, [{ path: '/trunk/secret', subject: '@developer', access: '' }]);
    // A bad path is refused with the API's own message.
    await ada.getByLabel('Path of rule 1').fill('/trunk/../x');
    await ada.getByRole('button', { name: 'Save path rules' }).click();
    await ada.locator('#path-rules .error').waitFor();
    assert.match(await text(ada, '#path-rules .error'), /path/);
    await shot(ada, '06b-project-path-rules');
    await bea.goto(url('/p/first-proj'));
    await bea.locator('#path-rules td code').first().waitFor();
    assert.equal(await text(bea, '#path-rules td code'), '/trunk/secret');
    assert.equal(await bea.getByRole('button', { name: 'Save path rules' }).count(), 0);
    // Back to no rules, for the checks that follow.
    assert.equal((await h.api.put('/api/v1/projects/first-proj/path-rules').send({ rules: [] })).status, 200);
  });

  it('the account page rotates the access token: the new one works for svn, the old one no longer', async () => {
    await ada.goto(url('/account'));
    await ada.getByRole('button', { name: 'Make a new access token' }).click();
    await ada.waitForURL(/\/account$/);
    const fresh = await text(ada, '#access-token');
    assert.notEqual(fresh, adaToken);
    await shot(ada, '07-account-token');
    assert.equal((await svn(['info', checkoutUrl], { user: 'ada', password: fresh })).code, 0);
    assert.notEqual((await svn(['info', checkoutUrl], { user: 'ada', password: adaToken })).code, 0);
    adaToken = fresh;
  });

  it('an operator sees the project, its backup status and the disk chart', async () => {
    await olga.goto(url('/login'));
    await olga.getByLabel('User name').fill('olga');
    await olga.getByLabel('Password').fill(PASSWORD);
    await olga.getByRole('button', { name: 'Sign in' }).click();
    await olga.waitForURL(/\/dashboard$/);

    // A real backup through the backups API, then its state on the operator page.
    const started = await h.api.post('/api/v1/backups').send({ project: 'first-proj' });
    assert.ok(started.status < 300, `POST /api/v1/backups: ${started.status} ${JSON.stringify(started.body)}`);
    await until(
      'a verified backup of first-proj',
      async () => {
        const r = await h.api.get('/api/v1/backups');
        return (
          r.status === 200 &&
          r.body.backups.some((b: { project: string; state: string }) => b.project === 'first-proj' && b.state === 'verified')
        );
      },
      60_000,
    );

    // And a refused one: the operator raises the backup volume's reserve above its size (the host's
    // own setting, read by the planner at each run), so the planner refuses before writing a byte.
    const reserve = h.cfg.backup.reserveBytes;
    h.cfg.backup.reserveBytes = 2 ** 52;
    try {
      assert.ok((await h.api.post('/api/v1/backups').send({ project: 'first-proj', kind: 'full' })).status < 300);
      await until(
        'a refused backup of first-proj',
        async () =>
          (await h.api.get('/api/v1/backups')).body.backups.some(
            (b: { project: string; state: string }) => b.project === 'first-proj' && b.state === 'refused',
          ),
        60_000,
      );
    } finally {
      h.cfg.backup.reserveBytes = reserve;
    }

    await olga.goto(url('/admin'));
    // The disk chart: at least two samples of each volume drawn as lines.
    await until(
      'two disk samples',
      async () => (h.run.db.prepare(`SELECT count(DISTINCT at) AS n FROM disk_samples`).get() as { n: number }).n >= 2,
      10_000,
    );
    await olga.reload();
    assert.equal(await olga.locator('#disk-chart svg polyline.data').count(), 1);
    assert.equal(await olga.locator('#disk-chart svg polyline.backup').count(), 1);
    // The backups panel (filled from GET /api/v1/backups).
    await olga.locator('#backup-runs tbody tr').first().waitFor({ timeout: 10_000 });
    const run = olga.locator('#backup-runs tbody tr', { hasText: 'verified' }).first();
    assert.match((await run.textContent()) ?? '', /first-proj/);
    const refused = olga.locator('#backup-runs tbody tr', { hasText: 'refused' }).first();
    assert.match((await refused.textContent()) ?? '', /first-proj/);
    assert.match((await refused.locator('td.error').textContent()) ?? '', /\S{10,}/, 'the refusal shows its reason');
    const lastGood = olga.locator('#backup-projects tr', { hasText: 'first-proj' });
    assert.doesNotMatch((await lastGood.textContent()) ?? '', /never/);
    await shot(olga, '08-operator-host');

    await olga.goto(url('/admin/projects?q=first'));
    const row = olga.locator('#all-projects tbody tr', { hasText: 'first-proj' });
    assert.match((await row.textContent()) ?? '', /active/);
    assert.match((await row.textContent()) ?? '', /ada/);
    await shot(olga, '09-operator-projects');
    await olga.goto(url('/admin/users?q=a'));
    assert.equal(await olga.locator('#all-users tbody tr').count(), 3);
    await shot(olga, '10-operator-users');
  });

  it('the operator suspends and resumes a project, and Subversion follows', async () => {
    await olga.goto(url('/admin/projects'));
    await olga.getByRole('button', { name: 'suspend first-proj' }).click();
    await olga.waitForURL(/done=/);
    assert.match(await text(olga, '#all-projects'), /suspended/);
    await until(
      'suspended: svn refuses ada',
      async () => (await svn(['info', checkoutUrl], { user: 'ada', password: adaToken })).code !== 0,
      20_000,
    );
    await olga.getByRole('button', { name: 'resume first-proj' }).click();
    await olga.waitForURL(/done=/);
    await until(
      'resumed: svn lets ada in',
      async () => (await svn(['info', checkoutUrl], { user: 'ada', password: adaToken })).code === 0,
      20_000,
    );
  });

  it('capacity gate: at the limit signup offers the waitlist and creates nothing; raising the limit reopens it', async () => {
    const n = projectCount();
    await olga.goto(url('/admin'));
    await olga.getByLabel('Maximum projects').fill(String(n));
    await olga.getByRole('button', { name: 'Save' }).click();
    assert.match(await text(olga, '#gate-state'), /closed to new projects/);

    const cara = await (await context(browser, 375)).newPage();
    await cara.goto(url('/signup'));
    assert.match(await text(cara, '#gate'), /not taking new projects right now/);
    assert.equal(await cara.locator('#waitlist').count(), 1);
    await shot(cara, '11-signup-at-capacity');
    // Trying anyway (no invite) is refused with the waitlist on the page, and nothing is made.
    await cara.locator('#su-username').fill('cara');
    await cara.locator('#su-email').fill('cara@example.com');
    await cara.locator('#su-password').fill(PASSWORD);
    await cara.locator('#su-invite').fill('');
    await cara.locator('#su-slug').fill('cara-proj');
    await cara.evaluate(() => document.querySelector<HTMLFormElement>('form[action="/signup"]')!.submit());
    await cara.waitForLoadState();
    assert.match(await text(cara, 'main'), /Join the waitlist/);
    assert.equal(projectCount(), n);
    assert.equal(h.run.db.prepare(`SELECT 1 FROM users WHERE name = 'cara'`).get(), undefined);
    await cara.getByLabel('Email', { exact: true }).first().fill('cara@example.com');
    await cara.getByRole('button', { name: 'Join the waitlist' }).click();
    assert.match(await text(cara, 'main'), /cara@example.com is on the waitlist/);

    // The operator sees the waitlist and makes an invite code for her.
    await olga.goto(url('/admin/waitlist'));
    await olga.getByRole('button', { name: 'Invite cara@example.com' }).click();
    const code = await text(olga, '#invite-code');
    assert.match(code, /^inv-/);
    await shot(olga, '12-operator-waitlist');

    // With the code, cara gets in even though the host is at its project limit.
    await cara.goto(url('/signup'));
    await cara.locator('#su-username').fill('cara');
    await cara.locator('#su-email').fill('cara@example.com');
    await cara.locator('#su-password').fill(PASSWORD);
    await cara.locator('#su-invite').fill(code);
    await cara.locator('#su-slug').fill('cara-proj');
    await cara.getByRole('button', { name: 'Sign up' }).click();
    await cara.waitForURL(/\/p\/cara-proj$/);
    assert.equal(projectCount(), n + 1);

    // Raising the limit reopens plain signup.
    await olga.goto(url('/admin'));
    await olga.getByLabel('Maximum projects').fill(String(n + 5));
    await olga.getByRole('button', { name: 'Save' }).click();
    assert.match(await text(olga, '#gate-state'), /taking new projects/);
    const dan = await (await context(browser, 375)).newPage();
    await dan.goto(url('/signup'));
    assert.equal(await dan.locator('#waitlist').count(), 0);
    assert.equal(await text(dan, '#signup-h'), 'Create your account');
    await dan.getByLabel('User name').fill('dan');
    await dan.getByLabel('Email').fill('dan@example.com');
    await dan.getByLabel('Password').fill(PASSWORD);
    await dan.getByLabel('Project name').fill('dan-proj');
    await dan.getByRole('button', { name: 'Sign up' }).click();
    await dan.waitForURL(/\/p\/dan-proj$/);
    assert.equal(projectCount(), n + 2);
  });

  it('the operator pages fit a 375 px screen', async () => {
    const phone = await (await context(browser, 375)).newPage();
    await phone.goto(url('/login'));
    await phone.getByLabel('User name').fill('olga');
    await phone.getByLabel('Password').fill(PASSWORD);
    await phone.getByRole('button', { name: 'Sign in' }).click();
    await phone.waitForURL(/\/dashboard$/);
    for (const [p, name] of [
      ['/admin', '14-operator-host-375'],
      ['/admin/projects', '15-operator-projects-375'],
      ['/admin/users', '16-operator-users-375'],
      ['/admin/waitlist', '17-operator-waitlist-375'],
      ['/account', '18-account-375'],
    ] as const) {
      const r = await phone.goto(url(p));
      // The page itself, not a refusal or the sign-in page (those fit 375 px too).
      assert.equal(r?.status(), 200, p);
      assert.equal(new URL(phone.url()).pathname, p);
      assert.match(await phone.title(), / · Keelson$/, p);
      await shot(phone, name);
    }
  });

  it('the owner deletes a project only after typing its name', async () => {
    await ada.goto(url('/p/first-proj'));
    await ada.locator('#del-confirm').fill('first-pro');
    await ada.getByRole('button', { name: 'Delete first-proj' }).click();
    assert.match(await text(ada, '#del-confirm-err'), /type first-proj exactly/);
    assert.equal(h.run.db.prepare(`SELECT state FROM projects WHERE slug = 'first-proj'`).pluck().get(), 'active');
    await shot(ada, '13-project-delete-refused');
    await ada.locator('#del-confirm').fill('first-proj');
    await ada.getByRole('button', { name: 'Delete first-proj' }).click();
    await ada.waitForURL(/\/dashboard\?deleted=first-proj$/);
    await until(
      'first-proj deleted',
      () => h.run.db.prepare(`SELECT state FROM projects WHERE slug = 'first-proj'`).pluck().get() === 'deleted',
      20_000,
    );
  });

  it('every page, the stylesheet and the script stay under the size budget', () => {
    assert.ok(sizes.size >= 10, `pages measured: ${[...sizes.keys()].join(', ')}`);
    // Each kind of page this journey visits is measured (a body that could not be read is not).
    for (const key of [
      'document /signup',
      'document /login',
      'document /dashboard',
      'document /p/first-proj',
      'document /account',
      'document /admin',
      'document /admin/projects',
      'document /admin/users',
      'document /admin/waitlist',
      'stylesheet /static/style.css',
      'script /static/app.js',
    ])
      assert.ok(sizes.has(key), `${key} was not measured; unread: ${unread.join('; ') || 'none'}`);
    for (const [key, bytes] of sizes) {
      const type = key.split(' ')[0] as keyof typeof BUDGET;
      assert.ok(bytes <= BUDGET[type], `${key}: ${bytes} bytes > budget ${BUDGET[type]}`);
    }
    for (const f of fs.readdirSync(ARTIFACTS).filter((f) => f.endsWith('.png')))
      assert.ok(fs.statSync(path.join(ARTIFACTS, f)).size > 1000, f);
    // Every screenshot of this journey (14 along the way, 5 at 375 px) was written, each a real image.
    assert.ok(shots.length >= 19, `${shots.length} screenshots: ${shots.map((f) => path.basename(f)).join(', ')}`);
    for (const f of shots) assert.ok(fs.statSync(f).size > 1000, f);
  });
});
