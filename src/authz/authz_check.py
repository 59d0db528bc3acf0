#!/usr/bin/python3
"""Keelson's authz checker: Subversion's own authz parser (libsvn_repos, the library
mod_authz_svn uses), loaded once and kept running.

`svnauthz validate` and `svnauthz accessof` run the same code, but as one process per question
(~5 ms each); checking a file and its canaries here costs well under a millisecond, which is what
lets a rebuild of 10,000 repositories' authz files validate every one of them.

One JSON object per line on stdin: {"id", "op": "check", "text": <authz file content>,
"repo": <name>, "checks": [[user or null, path], ...]}; one answer per line on stdout:
{"id", "ok": true, "result": {"access": ["rw" | "r" | "", ...]}} or {"id", "ok": false, "error"}.
A file libsvn cannot parse (undefined group, duplicate section, bad path) is an error.
"""
import json
import sys
import traceback

import svn.core
import svn.repos

READ = svn.repos.svn_authz_read
WRITE = svn.repos.svn_authz_write


def op_check(req):
    pool = svn.core.Pool()
    try:
        stream = svn.core.svn_stream_from_stringbuf(req['text'].encode('utf-8'), pool)
        authz = svn.repos.authz_parse(stream, None, pool)
        repo = req.get('repo') or ''
        access = []
        for user, path in req.get('checks', []):
            r = svn.repos.authz_check_access(authz, repo, path, user, READ, pool)
            w = svn.repos.authz_check_access(authz, repo, path, user, WRITE, pool)
            access.append('rw' if (r and w) else 'r' if r else '')
        return {'access': access}
    finally:
        pool.destroy()


def op_check_many(req):
    """Many files in one request (a rebuild): one answer each, an error for a file that fails."""
    out = []
    for item in req['items']:
        try:
            out.append(op_check(item))
        except svn.core.SubversionException as e:
            out.append({'error': 'svn: %s' % (e,)})
    return out


def op_ping(_):
    v = svn.core.SVN_VER_NUMBER
    return {'svn_version': v.decode() if isinstance(v, bytes) else str(v)}


OPS = {'check': op_check, 'check_many': op_check_many, 'ping': op_ping}


def main():
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        rid = None
        try:
            req = json.loads(line)
            rid = req.get('id')
            fn = OPS.get(req.get('op'))
            if fn is None:
                raise ValueError('unknown op %r' % req.get('op'))
            res = {'id': rid, 'ok': True, 'result': fn(req)}
        except svn.core.SubversionException as e:
            res = {'id': rid, 'ok': False, 'error': 'svn: %s' % (e,)}
        except Exception as e:  # every failure is answered; the checker keeps serving
            res = {'id': rid, 'ok': False, 'error': '%s: %s' % (type(e).__name__, e),
                   'trace': traceback.format_exc()[-2000:]}
        out.write(json.dumps(res) + '\n')
        out.flush()


if __name__ == '__main__':
    main()
