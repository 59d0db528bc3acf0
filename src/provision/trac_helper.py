#!/usr/bin/python3
"""Keelson's long-lived Trac helper.

Importing Trac costs about 0.5 s; trac-admin pays it on every call. This process imports Trac
once and then serves requests from Keelson's worker: one JSON object per line on stdin, one
answer per line on stdout ({"id", "ok", "result"} or {"id", "ok": false, "error"}).

It runs as the Trac user, never root, and imports Keelson's guard before Trac opens anything, so
no plugin, template or other code from an environment is ever loaded here (see trac_guard.py).
It only ever touches the environment paths it is given; Keelson validates them.
"""
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trac_guard  # noqa: E402,F401  (before anything opens an environment)

from trac import __version__ as TRAC_VERSION  # noqa: E402
from trac.env import Environment  # noqa: E402
from trac.perm import PermissionSystem  # noqa: E402
from trac.versioncontrol.api import RepositoryManager  # noqa: E402


def _open(path):
    if not os.path.isfile(os.path.join(path, 'VERSION')):
        raise ValueError('no Trac environment at %s' % path)
    return Environment(path)


def op_ping(_):
    return {'trac_version': TRAC_VERSION, 'pid': os.getpid(), 'uid': os.getuid()}


def op_sleep(req):
    """Blocks this helper for req['seconds'] (at most 30): how tests make a call hang."""
    import time
    seconds = min(max(float(req.get('seconds', 0)), 0.0), 30.0)
    time.sleep(seconds)
    return {'slept': seconds, 'pid': os.getpid()}


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


def _purge_triggers(env):
    """Triggers and views are not Trac's: an older release let owners create them through report
    SQL, and a trigger would run inside this helper. The guard refuses new ones; old ones go."""
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute("SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'view')")
        found = list(cursor.fetchall())
        for kind, name in found:
            cursor.execute('DROP %s IF EXISTS "%s"' % (kind.upper(), name.replace('"', '""')))
        return len(found)


def _purge_repositories(env):
    """Only the project's own repository (from the trac.ini Keelson renders) belongs here: rows
    that name another directory (Trac's Repositories panel stores them in trac.db) and the cached
    revisions of any repository but the default one are removed."""
    own = RepositoryManager(env).get_repository_id('')
    with env.db_transaction as db:
        n = 0
        for table, col in (('repository', 'id'), ('revision', 'repos'), ('node_change', 'repos')):
            cursor = db.cursor()
            cursor.execute('DELETE FROM %s WHERE %s != %%s' % (table, col), (own,))
            n += cursor.rowcount
        return n


def op_make_template(req):
    """A pristine environment made by Trac itself at req['path'] (in the Trac user's own folder);
    Keelson moves it into place and new projects start as copies of it."""
    env = Environment(req['path'], create=True, options=[
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
    return {'created': True}


def op_prepare_env(req):
    """Converges one environment with a single open: its permission table, no repository rows
    but its own, and, when asked, Trac's cache of the repository. Opening the environment is also
    Trac's own check of the trac.ini Keelson wrote."""
    env = _open(req['target'])
    try:
        purged_triggers = _purge_triggers(env)
        res = _converge_perms(env, req['perms'])
        res['purged_repository_rows'] = _purge_repositories(env)
        res['purged_triggers'] = purged_triggers
        if req.get('sync'):
            repos = RepositoryManager(env).get_repository('')
            if repos is None:
                raise ValueError('no default repository in %s' % req['target'])
            repos.sync(clean=bool(req.get('clean')))
            res['youngest'] = repos.youngest_rev
        return res
    finally:
        env.shutdown()


def op_restore_env(req):
    """A restored environment: when given, its permission table becomes exactly ``perms`` (a copy
    keeps none of the old project's members); its repository rows are purged and Trac's cache of
    the repository is rebuilt from the repository now in place."""
    env = _open(req['target'])
    try:
        res = {'purged_triggers': _purge_triggers(env)}
        if req.get('perms') is not None:
            res.update(_converge_perms(env, req['perms']))
        res['purged_repository_rows'] = _purge_repositories(env)
        repos = RepositoryManager(env).get_repository('')
        if repos is None:
            raise ValueError('no default repository in %s' % req['target'])
        repos.sync(clean=True)
        res['youngest'] = repos.youngest_rev
        return res
    finally:
        env.shutdown()


#: What only the shared trac.ini may hold: it disables the components that reach outside a
#: project, and a project's own file must not be able to change that or point Trac at files.
_SHARED_ONLY_SECTIONS = ('components', 'logging')
_SHARED_ONLY_OPTIONS = (('inherit', 'plugins_dir'), ('inherit', 'templates_dir'), ('inherit', 'htdocs_dir'))


def op_check_ini(req):
    """Trac's own configuration parser reads the file Keelson is about to publish (and what it
    inherits); a project's file may not hold what only the shared one may."""
    from trac.config import Configuration
    config = Configuration(req['path'])
    if not req.get('shared'):
        from configparser import RawConfigParser
        own = RawConfigParser()
        own.optionxform = str
        with open(req['path'], encoding='utf-8') as f:
            own.read_file(f)
        for section in _SHARED_ONLY_SECTIONS:
            if own.has_section(section):
                raise ValueError('a project trac.ini may not have a [%s] section' % section)
        for section, option in _SHARED_ONLY_OPTIONS:
            if own.has_option(section, option):
                raise ValueError('a project trac.ini may not set [%s] %s' % (section, option))
    return {'sections': sorted(config.sections())}


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
