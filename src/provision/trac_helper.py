#!/usr/bin/python3
"""Keelson's long-lived Trac helper.

Importing Trac costs about 0.5 s; trac-admin pays it on every call. This process imports Trac
once and then serves requests from Keelson's worker: one JSON object per line on stdin, one
answer per line on stdout ({"id", "ok", "result"} or {"id", "ok": false, "error"}).
It only ever touches the environment paths it is given; Keelson validates them.
"""
import json
import os
import shutil
import sys
import traceback

from trac import __version__ as TRAC_VERSION
from trac.env import Environment
from trac.perm import PermissionSystem
from trac.versioncontrol.api import RepositoryManager


def _open(path):
    if not os.path.isfile(os.path.join(path, 'VERSION')):
        raise ValueError('no Trac environment at %s' % path)
    return Environment(path)


def op_ping(_):
    return {'trac_version': TRAC_VERSION, 'pid': os.getpid()}


def _converge_perms(env, wanted):
    """Makes the permission table exactly the wanted set, in one transaction."""
    ps = PermissionSystem(env)
    want = set(tuple(p) for p in wanted)
    have = set(ps.get_all_permissions())
    removed = sorted(have - want)
    added = sorted(want - have)
    with env.db_transaction:
        for subject, action in removed:
            ps.revoke_permission(subject, action)
        for subject, action in added:
            ps.grant_permission(subject, action)
    return {'added': added, 'removed': removed}


def op_ensure_template(req):
    """A pristine environment made once by Trac itself; new projects start as copies of it."""
    path, staging = req['path'], req['staging']
    if os.path.isfile(os.path.join(path, 'VERSION')):
        return {'created': False}
    if os.path.exists(staging):
        shutil.rmtree(staging)
    env = Environment(staging, create=True, options=[
        ('project', 'name', 'template'),
        ('trac', 'database', 'sqlite:db/trac.db'),
        ('inherit', 'file', req['inherit']),
    ])
    try:
        # The permissions every project shares (the role groups), so each new project only
        # adds its members.
        _converge_perms(env, req['perms'])
    finally:
        env.shutdown()
    os.rename(staging, path)
    return {'created': True}


def op_prepare_env(req):
    """Makes or updates one environment with a single open: for a new one (given a template),
    copy the template and install the rendered trac.ini; then converge the permissions and,
    when asked, sync Trac's cache of the repository. Opening the environment is also Trac's own
    check of the trac.ini Keelson wrote."""
    target = req['target']
    if req.get('template'):
        if os.path.exists(target):
            shutil.rmtree(target)
        shutil.copytree(req['template'], target, symlinks=True)
        with open(os.path.join(target, 'conf', 'trac.ini'), 'w') as f:
            f.write(req['ini'])
    if 'perms' not in req:
        return {}
    env = _open(target)
    try:
        res = _converge_perms(env, req['perms'])
        if req.get('sync'):
            repos = RepositoryManager(env).get_repository('')
            if repos is None:
                raise ValueError('no default repository in %s' % target)
            repos.sync()
            res['youngest'] = repos.youngest_rev
        return res
    finally:
        env.shutdown()


def op_list_perms(req):
    env = _open(req['path'])
    try:
        return sorted(PermissionSystem(env).get_all_permissions())
    finally:
        env.shutdown()


def op_changeset_added(req):
    env = _open(req['path'])
    try:
        RepositoryManager(env).notify('changeset_added', '', [str(r) for r in req['revs']])
        return {}
    finally:
        env.shutdown()


OPS = {name[3:]: fn for name, fn in globals().items() if name.startswith('op_')}


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
        except Exception as e:  # every failure is answered; the helper keeps serving
            res = {'id': rid, 'ok': False, 'error': '%s: %s' % (type(e).__name__, e),
                   'trace': traceback.format_exc()[-2000:]}
        out.write(json.dumps(res) + '\n')
        out.flush()


if __name__ == '__main__':
    main()
