import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from '../../src/paths.js';

/**
 * The layout's rules are lint rules (eslint.config.js); this proves they bite: a file placed in a
 * room that imports what that room never imports fails `npm test`'s eslint, and an allowed import
 * passes. Each probe is linted from stdin under the name it would have, so nothing is written.
 */
function lint(as: string, source: string): { code: number | null; out: string } {
  const r = spawnSync(
    process.execPath,
    [path.join(PROJECT_ROOT, 'node_modules', 'eslint', 'bin', 'eslint.js'), '--stdin', '--stdin-filename', as],
    {
      cwd: PROJECT_ROOT,
      input: source,
      encoding: 'utf8',
    },
  );
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('the layout is enforced by lint', () => {
  const cases: { as: string; source: string; says: RegExp }[] = [
    {
      as: 'src/api/probe.ts',
      source: "import { openDatabase } from '../store/db.js';\nvoid openDatabase;\n",
      says: /src\/api\/ \(the admin API\) and web\//i,
    },
    {
      as: 'src/api/probe.ts',
      source: "import { webRouter } from '../../web/routes.js';\nvoid webRouter;\n",
      says: /neither imports the other/,
    },
    {
      as: 'src/http/probe.ts',
      source: "import { projectRoutes } from '../api/projects.js';\nvoid projectRoutes;\n",
      says: /what src\/api\/ and web\/ share/,
    },
    {
      as: 'web/probe.ts',
      source: "import { projectRoutes } from '../src/api/projects.js';\nvoid projectRoutes;\n",
      says: /neither imports the other/,
    },
    {
      as: 'web/probe.ts',
      source: "import { publishAuthz } from '../src/authz/publish.js';\nvoid publishAuthz;\n",
      says: /nor anything below the domain/,
    },
    { as: 'src/domain/probe.ts', source: "import fs from 'node:fs';\nvoid fs;\n", says: /no file system, processes or HTTP/ },
    { as: 'src/store/probe.ts', source: "import { login } from '../domain/signin.js';\nvoid login;\n", says: /bottom layer/ },
    {
      as: 'src/authz/probe.ts',
      source: "import { sessionAuth } from '../http/auth.js';\nvoid sessionAuth;\n",
      says: /never reach HTTP or the use cases/,
    },
    {
      as: 'src/domain/probe.ts',
      source: "export const q = (db: { prepare(s: string): unknown }) => db.prepare('SELECT 1');\n",
      says: /SQL belongs in src\/store/,
    },
    // The domain reaches backups and provisioning only through its ports, types included.
    {
      as: 'src/domain/probe.ts',
      source: "import { BackupService } from '../backup/engine.js';\nvoid BackupService;\n",
      says: /through the ports of its context/,
    },
    {
      as: 'src/domain/probe.ts',
      source: "import type { Reconciler } from '../provision/reconciler.js';\nexport type R = Reconciler;\n",
      says: /through the ports of its context/,
    },
    // A type-only import obeys the same rules as a value import.
    {
      as: 'src/api/probe.ts',
      source: "import type { ProjectRow } from '../store/projects.js';\nexport type P = ProjectRow;\n",
      says: /nor anything below the domain/,
    },
    {
      as: 'src/store/probe.ts',
      source: "import type { Ctx } from '../domain/context.js';\nexport type C = Ctx;\n",
      says: /bottom layer/,
    },
    // The base files stand on node and src/sys/ alone.
    { as: 'src/config.ts', source: "import { getUser } from './store/users.js';\nvoid getUser;\n", says: /base files/ },
    { as: 'src/names.ts', source: "import type { Unit } from './domain/unit.js';\nexport type U = Unit;\n", says: /base files/ },
    // The authz engine is below the jobs that call it.
    {
      as: 'src/authz/probe.ts',
      source: "import { TracHelper } from '../provision/trac.js';\nvoid TracHelper;\n",
      says: /nor the jobs that call them/,
    },
  ];
  for (const c of cases) {
    it(`${c.as}: ${c.source.split('\n')[0]} is refused`, () => {
      const r = lint(c.as, c.source);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, c.says);
    });
  }
  it('an import the room allows passes (the probe itself is valid code)', () => {
    const r = lint('src/api/probe.ts', "import { projectFor } from '../domain/projects.js';\nvoid projectFor;\n");
    assert.equal(r.code, 0, r.out);
    const w = lint('web/probe.ts', "import { projectFor } from '../src/domain/projects.js';\nvoid projectFor;\n");
    assert.equal(w.code, 0, w.out);
    const b = lint(
      'src/config.ts',
      "import { log } from './sys/log.js';\nimport { SLUG_RE } from './names.js';\nvoid log;\nvoid SLUG_RE;\n",
    );
    assert.equal(b.code, 0, b.out);
    const d = lint('src/domain/probe.ts', "import type { ProjectRow } from '../store/projects.js';\nexport type P = ProjectRow;\n");
    assert.equal(d.code, 0, d.out);
  });
});
