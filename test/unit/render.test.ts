import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { renderAuthz, renderPostCommitHook, renderTracPermissions, type ProjectAccess } from '../../src/authz/render.js';
import { renderProjectTracIni } from '../../src/provision/trac.js';
import type { Role } from '../../src/names.js';
import { checkCanaries } from '../../src/authz/canary.js';

const HOSTILE = [
  '../x',
  'x/y',
  '%2F',
  'Foo',
  '-x',
  'a]b',
  'a[b',
  'a,b',
  'a=b',
  'a:b',
  ' a',
  'a\nb',
  'a b',
  '~a',
  '*',
  '@g',
  '$x',
  'x'.repeat(200),
  'héllo',
  '__proto__',
  '',
];

const base: ProjectAccess = {
  slug: 'alpha',
  visibility: 'private',
  members: [
    { user: 'zed', role: 'developer' },
    { user: 'amy', role: 'owner' },
  ],
};

describe('renderAuthz', () => {
  it('is deterministic and sorted, and only references groups it defines', () => {
    const a = renderAuthz(base);
    const b = renderAuthz({ ...base, members: [...base.members].reverse() });
    assert.equal(a, b);
    assert.match(a, /^owner = amy$/m);
    assert.match(a, /^developer = zed$/m);
    assert.doesNotMatch(a, /viewer/);
    assert.doesNotMatch(a, /^\* =/m);
  });

  it('grants read to everyone on a public project', () => {
    assert.match(renderAuthz({ ...base, visibility: 'public' }), /^\* = r$/m);
  });

  it('passes the real svnauthz and gives each role its access', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'authz-'));
    const f = path.join(dir, 'authz');
    fs.writeFileSync(f, renderAuthz({ ...base, members: [...base.members, { user: 'vic', role: 'viewer' }] }));
    execFileSync('svnauthz', ['validate', f]);
    const access = (u: string) => execFileSync('svnauthz', ['accessof', '--username', u, '--path', '/', f]).toString().trim();
    assert.equal(access('amy'), 'rw');
    assert.equal(access('zed'), 'rw');
    assert.equal(access('vic'), 'r');
    assert.equal(access('stranger'), 'no');
    fs.rmSync(dir, { recursive: true });
  });

  it('refuses hostile names instead of emitting them', () => {
    for (const name of HOSTILE) {
      assert.throws(() => renderAuthz({ ...base, members: [{ user: name, role: 'owner' }] }), /refusing/, JSON.stringify(name));
      assert.throws(() => renderAuthz({ ...base, slug: name }), /refusing/, JSON.stringify(name));
    }
    assert.throws(() => renderAuthz({ ...base, members: [{ user: 'amy', role: 'god' as Role }] }), /refusing role/);
    assert.throws(() => renderAuthz({ ...base, members: [base.members[1]!, base.members[1]!] }), /twice/);
  });
});

describe('renderTracPermissions', () => {
  it('drops Trac defaults for private projects and maps roles to groups', () => {
    const p = renderTracPermissions(base);
    assert.ok(!p.some(([s]) => s === 'anonymous' || s === 'authenticated'));
    assert.deepEqual(
      p.filter(([s]) => !s.startsWith('@')),
      [
        ['amy', '@owner'],
        ['zed', '@developer'],
      ],
    );
    assert.ok(renderTracPermissions({ ...base, visibility: 'public' }).some(([s, a]) => s === 'anonymous' && a === '@viewer'));
  });
});

describe('hook and trac.ini renderers', () => {
  it('the hook names only the checked slug and a safe spool path', () => {
    const h = renderPostCommitHook('alpha', '/srv/keelson/spool/commits');
    assert.match(h, /^#!\/bin\/sh/);
    assert.match(h, /'\/srv\/keelson\/spool\/commits'\/alpha\.\$REV/);
    assert.throws(() => renderPostCommitHook('a;rm -rf /', '/x'), /refusing/);
    assert.throws(() => renderPostCommitHook('alpha', "/x'; rm -rf /"), /unsafe/);
  });

  it('trac.ini refuses titles that would inject settings', () => {
    const o = { slug: 'alpha', title: 'Alpha', inheritFile: '/d/t.ini', repoDir: '/d/svn/alpha', baseUrl: 'http://h/trac/alpha' };
    assert.match(renderProjectTracIni(o), /^name = Alpha$/m);
    assert.throws(() => renderProjectTracIni({ ...o, title: 'x\n[trac]\ndatabase = postgres://evil' }), /refusing/);
  });
});

describe('authz canaries', () => {
  const write = (content: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-'));
    const f = path.join(dir, 'authz');
    fs.writeFileSync(f, content);
    return f;
  };
  const access: ProjectAccess = { ...base, members: [base.members[1]!, { user: 'vic', role: 'viewer' }] };

  it('pass on what the renderer emits, for both visibilities', async () => {
    await checkCanaries(write(renderAuthz(access)), access);
    const pub = { ...access, visibility: 'public' as const };
    await checkCanaries(write(renderAuthz(pub)), pub);
  });

  it('name every rule a file breaks', async () => {
    // A valid file that grants too much: the viewer can write, and everyone can read a private project.
    const f = write('[groups]\nowner = amy\nviewer = vic\n[/]\n@owner = rw\n@viewer = rw\n* = r\n');
    execFileSync('svnauthz', ['validate', f]);
    await assert.rejects(checkCanaries(f, access), (e: Error) => {
      assert.match(e.message, /vic should have r on \//);
      assert.match(e.message, /anonymous should have no on \//);
      assert.match(e.message, /Keelson-NonMember should have no/);
      return true;
    });
  });
});
