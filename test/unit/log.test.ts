import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from '../../src/paths.js';

/** The log is JSON lines on stderr, and secrets never reach it (an invite code once did). */
describe('log', () => {
  const logModule = path.join(PROJECT_ROOT, 'dist', 'src', 'sys', 'log.js');
  const lines = (env: Record<string, string>, code: string) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { log } from ${JSON.stringify(logModule)};\n${code}`], {
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    assert.equal(r.status, 0, r.stderr.toString());
    return r.stderr
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };

  it('writes one JSON object per event with time, level and message', () => {
    const [l] = lines({}, `log.info('project converged', { slug: 'demo' });`);
    assert.equal(l!.level, 'info');
    assert.equal(l!.msg, 'project converged');
    assert.equal(l!.slug, 'demo');
    assert.ok(!Number.isNaN(Date.parse(String(l!.t))));
  });

  it('redacts passwords, tokens, invite codes and cookies, also one level down', () => {
    const [l] = lines(
      {},
      `log.info('invite created', { email: 'a@example.com', code: 'INV-SECRET', password: 'pw-secret', req: { authorization: 'Bearer tok-secret', cookie: 'keelson_session=s' }, accessToken: 'svn_secret' });`,
    );
    const text = JSON.stringify(l);
    for (const secret of ['INV-SECRET', 'pw-secret', 'tok-secret', 'keelson_session=s', 'svn_secret'])
      assert.ok(!text.includes(secret), text);
    assert.equal(l!.email, 'a@example.com');
    assert.equal(l!.code, '[redacted]');
  });

  it('KEELSON_LOG=silent mutes it; debug lines only with KEELSON_DEBUG', () => {
    assert.deepEqual(lines({ KEELSON_LOG: 'silent' }, `log.error('x');`), []);
    // Read at each call: a test host sets it after the module was imported.
    assert.deepEqual(lines({}, `process.env.KEELSON_LOG = 'silent'; log.error('x');`), []);
    assert.deepEqual(lines({}, `log.debug('x');`), []);
    assert.equal(lines({ KEELSON_DEBUG: '1' }, `log.debug('x');`)[0]!.level, 'debug');
  });
});
