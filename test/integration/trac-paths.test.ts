import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { http, startHost, svn, until, type TestHost } from '../helpers/host.js';

/**
 * Every Trac view of repository content obeys the path rules mod_authz_svn enforces. One public
 * project, one closed folder, four principals (the owner, a developer and a viewer the folder is
 * closed to, an anonymous visitor), every view Trac has of the repository; what each principal sees
 * there is compared with what the real `svn` client shows the same principal.
 *
 * Markers: the closed file's content, the message of the revision that touched only the closed
 * folder, the closed file's name; and the message of a revision that touched both (svn shows it,
 * with the readable path only).
 */
const HIDDEN_CONTENT = 'HIDDEN-CONTENT-7f3a';
const HIDDEN_MSG = 'HIDDEN-MSG-only-closed';
const HIDDEN_NAME = 'hidden-secret-b2.txt';
const MIXED_MSG = 'MIXED-MSG-both';
const MIXED_NAME = 'hidden-other-c9.txt';
const PUB_CONTENT = 'PUBLIC-CONTENT-e1';
const COPY_MSG = 'COPY-MSG-from-closed';

type Who = 'olga' | 'dave' | 'vera' | 'anonymous';

describe('path rules hold in every Trac view, as in svn', () => {
  let h: TestHost;
  let work = '';
  const tokens: Record<string, string> = {};
  const creds = (who: Who) => (who === 'anonymous' ? undefined : { user: who, password: tokens[who]! });

  before(async () => {
    h = await startHost('trac-paths');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-paths-'));
    for (const name of ['olga', 'dave', 'vera']) {
      const r = await h.api.post('/api/v1/users').send({ name, email: `${name}@example.com`, password: 'a long enough password' });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      tokens[name] = r.body.accessToken;
    }
    const p = await h.api.post('/api/v1/projects').send({ slug: 'atlas', title: 'Atlas', visibility: 'public', owner: 'olga' });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    await until('atlas active', async () => (await h.api.get('/api/v1/projects/atlas')).body.state === 'active');
    assert.equal((await h.api.put('/api/v1/projects/atlas/members/dave').send({ role: 'developer' })).status, 200);
    assert.equal((await h.api.put('/api/v1/projects/atlas/members/vera').send({ role: 'viewer' })).status, 200);
    const rules = await h.api.put('/api/v1/projects/atlas/path-rules').send({
      rules: [
        { path: '/trunk/hidden-zone', subject: '@owner', access: 'rw' },
        { path: '/trunk/hidden-zone', subject: '*', access: '' },
      ],
    });
    assert.equal(rules.status, 200, JSON.stringify(rules.body));
    await until(
      'jobs settled',
      () => h.run.db.prepare(`SELECT count(*) FROM jobs WHERE state IN ('pending','running')`).pluck().get() === 0,
    );

    // r2: a public file; r3: only the closed folder; r4: both.
    const wc = path.join(work, 'wc');
    const o = creds('olga');
    assert.equal((await svn(['checkout', `${h.svnUrl('atlas')}/trunk`, wc], o)).code, 0);
    fs.mkdirSync(path.join(wc, 'pub'));
    fs.writeFileSync(path.join(wc, 'pub', 'readme.txt'), `${PUB_CONTENT}\n`);
    assert.equal((await svn(['add', path.join(wc, 'pub')])).code, 0);
    assert.equal((await svn(['commit', '-m', 'public readme', wc], o)).code, 0);
    fs.mkdirSync(path.join(wc, 'hidden-zone'));
    fs.writeFileSync(path.join(wc, 'hidden-zone', HIDDEN_NAME), `${HIDDEN_CONTENT}\nval s = "x"\n`);
    assert.equal((await svn(['add', path.join(wc, 'hidden-zone')])).code, 0);
    assert.equal((await svn(['commit', '-m', HIDDEN_MSG, wc], o)).code, 0);
    fs.appendFileSync(path.join(wc, 'pub', 'readme.txt'), 'more\n');
    fs.writeFileSync(path.join(wc, 'hidden-zone', MIXED_NAME), `${HIDDEN_CONTENT}-2\n`);
    assert.equal((await svn(['add', path.join(wc, 'hidden-zone', MIXED_NAME)])).code, 0);
    const c = await svn(['commit', '-m', MIXED_MSG, wc], o);
    assert.equal(c.code, 0, c.stderr);
    // r5: a readable file copied from a closed one (svn shows nothing of it where the source is closed).
    assert.equal((await svn(['copy', path.join(wc, 'hidden-zone', HIDDEN_NAME), path.join(wc, 'pub', 'copied.txt')])).code, 0);
    const cp = await svn(['commit', '-m', COPY_MSG, wc], o);
    assert.equal(cp.code, 0, cp.stderr);
    await until('r5 in Trac', async () => (await http(`${h.tracUrl('atlas')}/changeset/5`, o)).status === 200);
  });

  after(async () => {
    await h?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** What the real svn client shows `who`: every file's content, the verbose log, the listing. */
  async function svnSees(who: Who): Promise<string> {
    const url = h.svnUrl('atlas');
    const out: string[] = [];
    for (const args of [
      ['log', '-v', url],
      ['list', '-R', url],
      ['cat', `${url}/trunk/pub/readme.txt`],
      ['cat', `${url}/trunk/pub/copied.txt`],
      ['cat', `${url}/trunk/hidden-zone/${HIDDEN_NAME}`],
      ['cat', `${url}/trunk/hidden-zone/${MIXED_NAME}`],
      ['diff', '-c', '3', url],
      ['diff', '-c', '4', url],
      ['diff', '-c', '5', url],
    ]) {
      const r = await svn(args, creds(who));
      out.push(r.stdout);
    }
    return out.join('\n');
  }

  /**
   * Every view Trac has of the repository. `names` is false for a view whose URL itself names the
   * closed file (an error page may echo it), so only content and messages count there. Zips are
   * compressed: there only the names inside can show (the central directory is plain).
   */
  const views: { url: string; names: boolean }[] = [
    { url: '/browser/trunk', names: true },
    { url: '/browser/trunk/hidden-zone', names: false },
    { url: `/browser/trunk/hidden-zone/${HIDDEN_NAME}`, names: false },
    { url: `/browser/trunk/hidden-zone/${HIDDEN_NAME}?format=raw`, names: false },
    { url: `/browser/trunk/hidden-zone/${HIDDEN_NAME}?format=txt`, names: false },
    { url: `/browser/trunk/hidden-zone/${HIDDEN_NAME}?annotate=blame`, names: false },
    { url: `/export/3/trunk/hidden-zone/${HIDDEN_NAME}`, names: false },
    { url: '/browser/trunk?format=zip', names: true },
    { url: '/browser/trunk/hidden-zone?format=zip', names: false },
    { url: '/browser?format=zip', names: true },
    { url: '/changeset/3', names: true },
    { url: '/changeset/3?format=diff', names: true },
    { url: '/changeset/3?format=zip', names: true },
    { url: '/changeset/4', names: true },
    { url: '/changeset/4?format=diff', names: true },
    { url: '/changeset/4?format=zip', names: true },
    { url: '/changeset?old_path=%2Ftrunk&old=2&new_path=%2Ftrunk&new=4', names: true },
    { url: '/changeset?old_path=%2Ftrunk&old=2&new_path=%2Ftrunk&new=4&format=zip', names: true },
    { url: '/log/', names: true },
    { url: '/log/?verbose=on', names: true },
    { url: '/log/?format=rss', names: true },
    { url: '/log/?format=changelog', names: true },
    { url: '/log/trunk?verbose=on&limit=100', names: true },
    { url: '/log/trunk/hidden-zone', names: false },
    { url: '/timeline?changeset=on&daysback=30', names: true },
    { url: '/timeline?changeset=on&daysback=30&format=rss', names: true },
    { url: '/search?q=MSG&changeset=on', names: true },
    { url: '/search?q=only-closed&changeset=on', names: true },
    { url: '/search?q=hidden&changeset=on', names: true },
    { url: `/browser/trunk/pub/readme.txt?annotate=blame`, names: true },
    { url: '/changeset/3/trunk', names: true },
    { url: '/changeset/5', names: true },
    { url: '/browser/trunk/pub', names: true },
    { url: '/browser/trunk/pub/copied.txt', names: true },
    { url: '/browser/trunk/pub/copied.txt?annotate=blame', names: true },
    { url: '/log/trunk/pub/copied.txt', names: true },
    { url: `/file/trunk/hidden-zone/${HIDDEN_NAME}`, names: false },
    { url: '/log/?revs=3', names: true },
    { url: '/log/?revs=3-5&verbose=on', names: true },
    {
      url: '/changeset?old_path=%2Ftrunk%2Fpub%2Freadme.txt&old=4&new_path=%2Ftrunk%2Fhidden-zone%2F' + HIDDEN_NAME + '&new=4',
      names: false,
    },
  ];

  async function tracSees(who: Who): Promise<{ seen: Set<string>; where: Map<string, string[]> }> {
    const seen = new Set<string>();
    const where = new Map<string, string[]>();
    for (const v of views) {
      const r = await http(`${h.tracUrl('atlas')}${v.url}`, creds(who));
      const markers = [HIDDEN_CONTENT, HIDDEN_MSG, MIXED_MSG, COPY_MSG, PUB_CONTENT, ...(v.names ? [HIDDEN_NAME, MIXED_NAME] : [])];
      for (const m of markers) {
        if (r.body.includes(m)) {
          seen.add(m);
          where.set(m, [...(where.get(m) ?? []), v.url]);
        }
      }
    }
    return { seen, where };
  }

  /**
   * The svn client reads a public repository anonymously until the server asks for credentials,
   * so on the public project its log is the anonymous view for everyone; the signed-in users are
   * compared again once the project is private, where svn authenticates every request.
   */
  async function compare(who: Who) {
    const svnText = await svnSees(who);
    const { seen, where } = await tracSees(who);
    for (const m of seen) {
      assert.ok(svnText.includes(m), `${who} sees ${m} in Trac (${where.get(m)!.join(', ')}) but not in svn`);
    }
    // What the principal may see, Trac shows too (so the comparison above has something to compare).
    assert.ok(seen.has(PUB_CONTENT), `${who} should see the public file in Trac`);
    if (svnText.includes(HIDDEN_MSG)) {
      for (const m of [HIDDEN_CONTENT, HIDDEN_MSG, HIDDEN_NAME, MIXED_MSG])
        assert.ok(seen.has(m), `control: ${who} sees ${m} in Trac as in svn`);
    } else {
      // svn shows a revision with a closed path without its message: Trac does not list it.
      assert.ok(!svnText.includes(MIXED_MSG), `control: svn hides the mixed revision's message from ${who}`);
      assert.ok(!svnText.includes(COPY_MSG), `control: svn hides the message of a copy from a closed file from ${who}`);
    }
  }

  for (const who of ['anonymous', 'dave', 'vera'] as const) {
    it(`public project, ${who}: Trac shows nothing of the repository that svn does not`, () => compare(who));
  }

  it('private project: the owner sees everything in Trac; developer and viewer nothing svn hides', async () => {
    assert.equal((await h.api.patch('/api/v1/projects/atlas').send({ visibility: 'private' })).status, 200);
    await until(
      'jobs settled',
      () => h.run.db.prepare(`SELECT count(*) FROM jobs WHERE state IN ('pending','running')`).pluck().get() === 0,
    );
    assert.equal((await http(`${h.tracUrl('atlas')}/wiki`)).status, 401, 'the project is private now');
    for (const who of ['olga', 'dave', 'vera'] as const) await compare(who);
  });

  it('folder zips are off for everyone (Trac checked only the top folder of an archive)', async () => {
    for (const who of ['olga', 'anonymous'] as const) {
      const r = await http(`${h.tracUrl('atlas')}/browser/trunk?format=zip`, creds(who));
      assert.notEqual(r.status, 200, `${who}: a folder zip was served`);
    }
  });
});
