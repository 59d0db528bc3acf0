import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { svn, until, type TestHost } from './host.js';

/** Users, projects and commits through the real API and the real svn client. */
export function fixtures(h: TestHost) {
  const pw: Record<string, string> = {};
  const creds = (user: string) => ({ user, password: pw[user]! });
  return {
    pw,
    creds,
    async user(name: string) {
      const r = await h.api.post('/api/v1/users').send({ name, email: `${name}@example.com`, password: 'a long enough password' });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      pw[name] = r.body.accessToken;
    },
    async project(slug: string, owner: string, visibility = 'private') {
      const r = await h.api.post('/api/v1/projects').send({ slug, owner, visibility, title: `Project ${slug}` });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      await until(`${slug} active`, async () => (await h.api.get(`/api/v1/projects/${slug}`)).body.state === 'active', 30_000);
    },
    async setRole(slug: string, u: string, role: string) {
      const r = await h.api.put(`/api/v1/projects/${slug}/members/${u}`).send({ role });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    },
    /** Waits until the project's published authz is its database version. */
    async published(slug: string, timeoutMs = 20_000) {
      return until(
        `${slug} published`,
        async () => {
          const r = await h.api.get(`/api/v1/projects/${slug}/authz`);
          return r.body.inSync ? r.body : undefined;
        },
        timeoutMs,
      );
    },
    /**
     * Checks out `dir` of the project, adds files, commits; returns the commit's result. The checkout
     * must succeed (a failed checkout throws here), so a refused commit is the commit's refusal.
     */
    async commit(slug: string, u: string, files: Record<string, string>, dir = 'trunk', message = `commit by ${u}`) {
      const wc = fs.mkdtempSync(path.join(os.tmpdir(), 'wc-'));
      try {
        const co = await svn(['checkout', `${h.svnUrl(slug)}/${dir}`, wc], creds(u));
        assert.equal(co.code, 0, `checkout of ${slug}/${dir} as ${u} failed: ${co.stderr}`);
        for (const [f, content] of Object.entries(files)) {
          fs.mkdirSync(path.dirname(path.join(wc, f)), { recursive: true });
          fs.writeFileSync(path.join(wc, f), content);
        }
        const add = await svn(['add', '--force', '--parents', ...Object.keys(files).map((f) => path.join(wc, f))]);
        assert.equal(add.code, 0, add.stderr);
        return await svn(['commit', '-m', message, wc], creds(u));
      } finally {
        fs.rmSync(wc, { recursive: true, force: true });
      }
    },
  };
}
