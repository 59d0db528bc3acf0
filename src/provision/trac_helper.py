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
    env.shutdown()
    os.rename(staging, path)
    return {'created': True}


def op_clone_template(req):
    """Copies the template to a staging path and installs the rendered trac.ini."""
    template, target = req['template'], req['target']
    if os.path.exists(target):
        shutil.rmtree(target)
    shutil.copytree(template, target, symlinks=True)
    with open(os.path.join(target, 'conf', 'trac.ini'), 'w') as f:
        f.write(req['ini'])
    return {}


def op_check(req):
    """Opens the environment with its configuration: Trac itself validates what Keelson wrote."""
    env = _open(req['path'])
    try:
        repos = RepositoryManager(env).get_all_repositories()
        return {'repositories': sorted(repos.keys()), 'name': env.project_name}
    finally:
        env.shutdown()


def op_converge_perms(req):
    """Makes the permission table exactly the wanted set (grants missing, revokes extra)."""
    env = _open(req['path'])
    try:
        ps = PermissionSystem(env)
        want = set(tuple(p) for p in req['perms'])
        have = set(ps.get_all_permissions())
        removed = sorted(have - want)
        added = sorted(want - have)
        for subject, action in removed:
            ps.revoke_permission(subject, action)
        for subject, action in added:
            ps.grant_permission(subject, action)
        return {'added': added, 'removed': removed}
    finally:
        env.shutdown()


def op_list_perms(req):
    env = _open(req['path'])
    try:
        return sorted(PermissionSystem(env).get_all_permissions())
    finally:
        env.shutdown()


def op_sync(req):
    """Brings Trac's cache of the default repository up to the repository's youngest revision."""
    env = _open(req['path'])
    try:
        repos = RepositoryManager(env).get_repository('')
        if repos is None:
            raise ValueError('no default repository in %s' % req['path'])
        repos.sync(clean=bool(req.get('clean')))
        return {'youngest': repos.youngest_rev}
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
