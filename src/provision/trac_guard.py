"""Keelson's guard for Trac in a shared, multi-tenant process.

Every process that opens a tenant's Trac environment imports this module first: the mod_wsgi
daemon (trac.wsgi) and Keelson's helper (trac_helper.py). Both run as the Trac user, never root.
Owners are strangers, so nothing inside an environment may decide what code runs or which files
are read. Trac's stock behaviour reads three such things from the environment; here they are cut
off at the source, so a Trac admin panel, a Trac bug or a file planted in an environment cannot
bring them back:

- plugins: Trac imports every ``<env>/plugins/*.py`` and egg (and ``[inherit] plugins_dir``) when
  it opens an environment. Only installed packages (Trac itself, tracopt) are loaded here.
- templates: ``<env>/templates/site_head.html`` and friends are Jinja2 templates Trac renders,
  i.e. code. Only Trac's own templates are used.
- static files: ``<env>/htdocs`` is served under ``/chrome/site/`` on the Trac origin. Not served.

SQL: owners administer their own reports, and a Trac report is SQL that Trac runs as written on
the project's database connection. SQLite there could ATTACH another tenant's trac.db (read it,
write it), change the schema (PRAGMA writable_schema, triggers that run in Keelson's helper) or
corrupt memory (fts3_tokenizer). Every Trac connection here gets an authorizer that refuses those
for everyone, no attached databases at all, a cap on value sizes, and while a report runs only
reads are allowed, with a time limit.

And one about identity: Trac's ``trac_auth`` login cookie is checked against Trac's own table,
not Apache's credentials, so it outlived a rotated token or a disabled user. Here Trac trusts only
the user Apache authenticated on this very request (REMOTE_USER); a cookie alone is anonymous.
"""
import sqlite3
import threading
import time

import pkg_resources

import trac.db.sqlite_backend
import trac.env
import trac.loader
import trac.ticket.report
import trac.web.auth
import trac.web.chrome
from trac.perm import PermissionSystem

import trac_highlight
import trac_limits
import trac_paths

_load_installed_eggs = trac.loader.load_eggs('trac.plugins')


def _load_installed_components(env, extra_path=None, loaders=None):
    # An empty search path: entry points of installed distributions only, no plugin folders.
    _load_installed_eggs(env, [], auto_enable=None)


trac.loader.load_components = _load_installed_components
trac.env.load_components = _load_installed_components

_TRAC_TEMPLATES = pkg_resources.resource_filename('trac', 'templates')
_TRAC_HTDOCS = TRAC_HTDOCS = pkg_resources.resource_filename('trac', 'htdocs')


def _templates_dirs(self):
    return [_TRAC_TEMPLATES]


def _htdocs_dirs(self):
    return [('common', _TRAC_HTDOCS)]


trac.web.chrome.Chrome.get_templates_dirs = _templates_dirs
trac.web.chrome.Chrome.get_htdocs_dirs = _htdocs_dirs

_authenticate = trac.web.auth.LoginModule.authenticate


def _authenticate_by_server_only(self, req):
    if not req.remote_user:
        return None
    return _authenticate(self, req)


trac.web.auth.LoginModule.authenticate = _authenticate_by_server_only


# ---- SQL ----

#: Seconds a report may run before SQLite interrupts it (trac.wsgi sets Keelson's configured value).
REPORT_SECONDS = 10

_report = threading.local()
_NEVER = {
    sqlite3.SQLITE_ATTACH,
    sqlite3.SQLITE_DETACH,
    sqlite3.SQLITE_CREATE_TRIGGER,
    sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
    sqlite3.SQLITE_CREATE_VTABLE,
    sqlite3.SQLITE_CREATE_VIEW,
    sqlite3.SQLITE_CREATE_TEMP_VIEW,
}
#: The pragmas Trac's SQLite backend itself uses; no other (writable_schema, ...) ever runs.
_PRAGMAS = {'table_info', 'index_list', 'index_info', 'journal_mode', 'synchronous'}
_FUNCTIONS = {'fts3_tokenizer', 'load_extension', 'readfile', 'writefile', 'edit'}
_REPORT_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
    sqlite3.SQLITE_TRANSACTION,
    sqlite3.SQLITE_SAVEPOINT,
}
#: Tables a report never reads: Trac's login cookies of the project's members.
_REPORT_HIDDEN = {'auth_cookie'}


def _authorize(action, arg1, arg2, dbname, source):
    if action in _NEVER:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or '').lower() in _FUNCTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or '').lower() not in _PRAGMAS:
        return sqlite3.SQLITE_DENY
    if getattr(_report, 'active', False):
        if action not in _REPORT_ACTIONS:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_READ and (arg1 or '').lower() in _REPORT_HIDDEN:
            return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _progress():
    deadline = getattr(_report, 'deadline', None)
    return 1 if deadline is not None and time.monotonic() > deadline else 0


_connection_init = trac.db.sqlite_backend.SQLiteConnection.__init__


def _guarded_connection_init(self, *args, **kwargs):
    _connection_init(self, *args, **kwargs)
    cnx = self.cnx
    cnx.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    cnx.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, trac_limits.MAX_VALUE_BYTES)
    cnx.set_authorizer(_authorize)
    cnx.set_progress_handler(_progress, 10000)


trac.db.sqlite_backend.SQLiteConnection.__init__ = _guarded_connection_init

_execute_report = trac.ticket.report.ReportModule.execute_paginated_report


def _read_only_report(self, *args, **kwargs):
    _report.active = True
    _report.deadline = time.monotonic() + REPORT_SECONDS
    trac_limits.report_started()
    try:
        return _execute_report(self, *args, **kwargs)
    finally:
        trac_limits.report_ended()
        _report.active = False
        _report.deadline = None


trac.ticket.report.ReportModule.execute_paginated_report = _read_only_report


def may_enter(env, user):
    """True when ``user`` (None: anonymous) holds any permission in this environment: a member,
    or anyone on a public project. Everyone else gets nothing from Trac, not even the title."""
    return bool(PermissionSystem(env).get_user_permissions(user or 'anonymous'))


# Trac's permission cache keeps a user's rights for 5 s per process; Keelson promises that a
# removed member or a suspended project loses access on the next request. The permission table
# itself stays cached (Trac invalidates it across processes when it changes).
import trac.perm  # noqa: E402

trac.perm.DefaultPermissionPolicy.CACHE_EXPIRY = -1
trac.perm.PermissionSystem.CACHE_EXPIRY = -1

# Path rules decided by libsvn in every view, bounded reports and sessions, highlighting out of
# process (each module says why).
trac_paths.install()
trac_limits.install()
trac_highlight.install()
