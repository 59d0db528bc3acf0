import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { renderAuthz, renderTracPermissions } from '../../src/authz/render.js';
import type { ProjectAccess } from '../../src/names.js';
import { renderPostCommitHook } from '../../src/files/hooks/post-commit.js';
import { renderProjectTracIni } from '../../src/files/trac/ini.js';
import type { Role } from '../../src/names.js';
import { AuthzChecker, canaries } from '../../src/authz/canary.js';
import { after } from 'node:test';

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

const HOSTILE_PATHS = [
  '/',
  'trunk',
  '/trunk/',
  '//trunk',
  '/trunk//x',
  '/trunk/../x',
  '/trunk/./x',
  '/..',
  '/Trunk',
  '/trunk x',
  '/trunk\n[/]',
  '/a]b',
  '/a[b',
  '/a,b',
  '/a=b',
  '/a:b',
  '/a@b',
  '/a&b',
  '/~a',
  '/a*',
  '/$x',
  '/#x',
  '/héllo',
  ':glob:/x',
];

describe('path rules', () => {
  const ruled: ProjectAccess = {
    ...base,
    rules: [
      { path: '/trunk/secret', subject: '*', access: '' },
      { path: '/trunk/secret', subject: '@owner', access: 'rw' },
      { path: '/trunk/secret', subject: 'zed', access: 'r' },
      { path: '/tags', subject: '@developer', access: 'r' },
      { path: '/tags', subject: '@viewer', access: 'rw' },
    ],
  };

  it('render sorted sections; a rule for a role nobody holds is left out, never an undefined group', () => {
    const a = renderAuthz(ruled);
    assert.match(a, /\[\/tags\]\n@developer = r\n\n\[\/trunk\/secret\]\n\* =\n@owner = rw\nzed = r\n$/);
    assert.doesNotMatch(a, /@viewer/);
    assert.equal(renderAuthz({ ...ruled, rules: [...ruled.rules!].reverse() }), a, 'same rows, same bytes');
  });

  it('refuse hostile paths and subjects, and rules for non-members', () => {
    for (const bad of HOSTILE_PATHS) {
      assert.throws(() => renderAuthz({ ...base, rules: [{ path: bad, subject: '*', access: 'r' }] }), /refusing/, JSON.stringify(bad));
    }
    for (const bad of [...HOSTILE.filter((x) => x !== '*'), '@admin', '@', '$authenticated', '~zed']) {
      assert.throws(() => renderAuthz({ ...base, rules: [{ path: '/x', subject: bad, access: 'r' }] }), /refusing/, JSON.stringify(bad));
    }
    assert.throws(() => renderAuthz({ ...base, rules: [{ path: '/x', subject: 'mallory', access: 'r' }] }), /not a member/);
    assert.throws(() => renderAuthz({ ...base, rules: [{ path: '/x', subject: '*', access: 'w' as 'r' }] }), /refusing access/);
  });

  it('a suspended project grants nothing, in SVN and in Trac', () => {
    const s = { ...ruled, visibility: 'public' as const, suspended: true };
    const a = renderAuthz(s);
    assert.doesNotMatch(a, /=/);
    assert.ok(renderTracPermissions(s).every(([subject]) => subject.startsWith('@')));
  });

  it('the expected-access model agrees with the real svnauthz on every canary', () => {
    // svnauthz is a separate program from the libsvn checker the publisher uses: two witnesses.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rules-'));
    for (const p of [ruled, { ...ruled, visibility: 'public' as const }, { ...ruled, suspended: true }]) {
      const f = path.join(dir, 'authz');
      fs.writeFileSync(f, renderAuthz(p));
      const qs = canaries(p);
      assert.ok(qs.length >= (p.suspended ? 4 : 12));
      for (const q of qs) {
        const out = execFileSync('svnauthz', ['accessof', '--path', q.path, ...(q.user ? ['--username', q.user] : []), f])
          .toString()
          .trim();
        assert.equal(out === 'no' ? '' : out, q.want, `${q.user ?? 'anonymous'} on ${q.path}`);
      }
    }
  });
});

describe('authz canaries (libsvn checker)', () => {
  const checker = new AuthzChecker('/usr/bin/python3');
  after(() => checker.close());
  const access: ProjectAccess = { ...base, members: [base.members[1]!, { user: 'vic', role: 'viewer' }] };

  it('pass on what the renderer emits, for both visibilities and with path rules', async () => {
    await checker.verify(renderAuthz(access), access);
    const pub = { ...access, visibility: 'public' as const };
    await checker.verify(renderAuthz(pub), pub);
    const ruled = { ...access, rules: [{ path: '/trunk/secret', subject: '*', access: '' as const }] };
    await checker.verify(renderAuthz(ruled), ruled);
  });

  it('name every rule a file breaks', async () => {
    // A valid file that grants too much: the viewer can write, and everyone can read a private project.
    const f = '[groups]\nowner = amy\nviewer = vic\n[/]\n@owner = rw\n@viewer = rw\n* = r\n';
    await assert.rejects(checker.verify(f, access), (e: Error) => {
      assert.match(e.message, /vic should have r on \//);
      assert.match(e.message, /anonymous should have no access on \//);
      assert.match(e.message, /Keelson-NonMember should have no access/);
      return true;
    });
  });

  it('refuse what libsvn cannot parse', async () => {
    await assert.rejects(checker.verify('[/]\n@ghost = rw\n', access), /undefined group/);
    await assert.rejects(checker.verify('[/]\n* = r\n[/]\n* = r\n', access), /svn:/);
  });
});
