import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layout's rules (docs/architecture.md): each folder has one job and names what it never
 * imports, types included (a type-only import runs uphill as surely as a value one). A forbidden
 * import, or SQL outside src/store/, fails `npm test` through lint (test/unit/layout.test.ts
 * proves it).
 */
const never = (what, ...groups) => ({
  '@typescript-eslint/no-restricted-imports': [
    'error',
    {
      patterns: groups.map((g) => ({ group: g, message: `${what}`, allowTypeImports: false })),
    },
  ],
});
const up = (dirs) => dirs.flatMap((d) => [`**/${d}`, `**/${d}/*`, `**/${d}/**`]);

const layers = [
  {
    files: ['src/http/**/*.ts'],
    rules: never(
      'src/http/ is what src/api/ and web/ share (authentication, sessions and CSRF, errors, schemas; src/main/app.ts assembles the app): it never imports either of them, nor the store, jobs, generated files, provisioning or backups directly',
      up(['api', 'web', 'store', 'jobs', 'files', 'provision', 'backup', 'authz', 'main']),
    ),
  },
  {
    files: ['src/api/**/*.ts'],
    rules: never(
      'src/api/ (the admin API) and web/ (the signup web UI) are siblings over src/domain/ and src/http/: neither imports the other, nor anything below the domain',
      up(['store', 'jobs', 'files', 'provision', 'backup', 'authz', 'main', 'web']),
    ),
  },
  {
    files: ['web/**/*.ts'],
    rules: never(
      'src/api/ (the admin API) and web/ (the signup web UI) are siblings over src/domain/ and src/http/: neither imports the other, nor anything below the domain',
      up(['store', 'jobs', 'files', 'provision', 'backup', 'authz', 'main', 'api']),
    ),
  },
  {
    files: ['src/cli/**/*.ts'],
    rules: never('src/cli/ makes the same domain calls as HTTP: it never opens the store itself', up(['store', 'http', 'api', 'web'])),
  },
  {
    files: ['src/domain/**/*.ts'],
    rules: never(
      'src/domain/ holds use cases and rules: no file system, processes or HTTP, no jobs or files (it reaches backups, restores and the credentials writer through the ports of its context, which src/main/ wires)',
      [
        'fs',
        'node:fs',
        'fs/*',
        'node:fs/*',
        'child_process',
        'node:child_process',
        'express',
        ...up(['http', 'api', 'web', 'main', 'cli', 'jobs', 'provision', 'backup', 'files', 'authz']),
      ],
    ),
  },
  {
    files: ['src/store/**/*.ts'],
    rules: never(
      'src/store/ is the bottom layer: rows in, rows out',
      up(['domain', 'http', 'api', 'web', 'cli', 'main', 'jobs', 'provision', 'backup', 'files', 'authz']),
    ),
  },
  {
    files: ['src/jobs/**/*.ts'],
    rules: never('src/jobs/ runs injected handlers: it never knows what a job does', up(['domain', 'provision', 'backup', 'http', 'main'])),
  },
  {
    files: ['src/files/**/*.ts', 'src/authz/**/*.ts'],
    rules: never(
      'src/files/ and src/authz/ render, check and publish files: they never reach HTTP or the use cases, nor the jobs that call them',
      up(['http', 'api', 'web', 'domain', 'main', 'cli', 'jobs', 'provision', 'backup']),
    ),
  },
  {
    files: ['src/provision/**/*.ts', 'src/backup/**/*.ts'],
    rules: never('provisioning and backups run as jobs: they never reach HTTP', up(['http', 'api', 'web', 'main'])),
  },
  {
    files: ['src/config.ts', 'src/names.ts', 'src/errors.ts', 'src/paths.ts', 'src/settings/**/*.ts'],
    rules: never('the base files (configuration, names, errors, paths, settings) import only node, packages, src/sys/ and each other', [
      ...up(['store', 'domain', 'http', 'api', 'web', 'cli', 'main', 'jobs', 'provision', 'backup', 'files', 'authz']),
    ]),
  },
  {
    files: ['src/sys/**/*.ts'],
    rules: never('src/sys/ knows nothing of Keelson: only node and packages', ['../*']),
  },
];

/**
 * SQL lives in src/store/ only. Two exceptions, each about a file that is not Keelson's database:
 * credentials.db's own table format lives with its one writer, and src/sys/sqlite.ts checks and
 * copies SQLite files as files (a backup's copy of trac.db).
 */
const sqlOutsideStore = {
  files: ['src/**/*.ts', 'web/**/*.ts'],
  ignores: ['src/store/**', 'src/files/credentials/**', 'src/sys/sqlite.ts'],
  rules: {
    'no-restricted-syntax': [
      'error',
      {
        selector: 'CallExpression[callee.property.name=/^(prepare|exec|pragma)$/][arguments.length>0]:not([callee.object.regex])',
        message: 'SQL belongs in src/store/: add a store function and call it',
      },
    ],
  },
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'web/**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: true, allowTernary: true }],
    },
  },
  ...layers,
  sqlOutsideStore,
);
