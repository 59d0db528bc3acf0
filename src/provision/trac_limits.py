"""What one request may take of the Trac daemon every tenant shares.

Every project's Trac runs in the same few mod_wsgi daemon processes (one group for signed-in
users, one for anonymous visitors: see Keelson's Apache configuration). Python runs one thread at a
time per process, so a request that computes for long, or holds a thread while it waits, takes that
from everyone. The bounds here, each a setting (trac.wsgi sets ``LIMITS`` from Keelson's config):

- **threads per project**: a project has at most ``project_requests`` requests in flight per
  process (``anon_project_requests`` for anonymous visitors); one more is answered 503 at once, so
  a flood of one project's slow pages costs that project's visitors, not another tenant's. Static
  files (``/chrome/``) are not counted.
- **anonymous visitors are lower priority**: the anonymous group's threads run at nice
  ``anon_nice``, so when signed-in users and an anonymous flood want the same CPU, users win.
- **changesets**: the changeset page, diff and zip list at most ``changeset_paths`` changed paths.
- **reports**: rows and bytes a report may return (CSV and ``?max=`` included), and the size of
  one value while a report runs; the SQL time limit is in trac_guard.
- **sessions**: anonymous visitors never write a session (no rows in trac.db from a ``/prefs`` POST
  with a fresh cookie); a signed-in user's session keeps at most ``session_keys`` values of at most
  ``session_value_bytes`` each.
- **the sandbox**: every response that is not an HTML page of Trac's own (any other type, or any
  download: raw files, attachments, zips, diffs) carries a CSP sandbox, whatever its URL says.
"""
import os
import sqlite3
import threading

import trac.db.sqlite_backend
import trac.web.session
from trac.core import TracError

LIMITS = {
    'report_rows': 10000,
    'report_bytes': 16 * 1024 * 1024,
    'report_value_bytes': 1024 * 1024,
    'project_requests': 4,
    'anon_project_requests': 2,
    'anon_nice': 19,
    'session_keys': 64,
    'session_value_bytes': 16 * 1024,
    'changeset_paths': 1000,
}

#: The process group anonymous requests run in (Keelson's Apache configuration routes them).
ANON_GROUP = 'keelson-trac-anon'

# ---- reports ----

_report = threading.local()


def report_started():
    _report.rows = 0
    _report.bytes = 0
    _report.active = True


def report_ended():
    _report.active = False


def _reporting():
    return getattr(_report, 'active', False)


class ReportTooLarge(TracError):
    pass


def _size(row):
    n = 16
    for v in row:
        n += len(v) if isinstance(v, (str, bytes)) else 8
    return n


_Cursor = trac.db.sqlite_backend.PyFormatCursor
_execute = _Cursor.execute
_c_fetchmany = sqlite3.Cursor.fetchmany
_c_fetchall = sqlite3.Cursor.fetchall


def _bounded_execute(self, sql, args=None):
    # A report's single values are small; zeroblob(33000000) rows cost SQLite nothing and Python
    # hundreds of MB each. Set on every statement, since connections are pooled and shared.
    self.connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH,
                             LIMITS['report_value_bytes'] if _reporting() else _max_value_bytes())
    return _execute(self, sql, args)


def _max_value_bytes():
    import trac_guard
    return trac_guard.MAX_VALUE_BYTES


def _bounded_fetchall(self):
    if not _reporting():
        return _c_fetchall(self)
    rows = []
    while True:
        batch = _c_fetchmany(self, 64)
        if not batch:
            return rows
        for row in batch:
            _report.rows += 1
            _report.bytes += _size(row)
        rows.extend(batch)
        if _report.rows > LIMITS['report_rows'] or _report.bytes > LIMITS['report_bytes']:
            raise ReportTooLarge(
                'This report returns more than Keelson allows (%d rows or %d MiB): add conditions '
                'or a LIMIT to its SQL.' % (LIMITS['report_rows'], LIMITS['report_bytes'] // 1048576))


# ---- changesets ----
#
# One revision may change any number of paths, and Trac's changeset page, diff and zip list every
# one: 20,000 paths took 7 s and 330 MB of one daemon process per GET. Inside the changeset views a
# change list stops after ``changeset_paths`` entries (the page says so). Everything else (the
# permission check above all, which must see every path) reads the whole list.

_changes = threading.local()


def _bounded(get_changes):
    def wrapper(*args, **kwargs):
        limit = getattr(_changes, 'limit', None)
        n = 0
        for change in get_changes(*args, **kwargs):
            if limit is not None and n >= limit:
                _changes.truncated = True
                return
            n += 1
            yield change
    return wrapper


class whole_change_lists(object):
    """Within it, change lists are never cut (for the permission check)."""

    def __enter__(self):
        self._saved = getattr(_changes, 'limit', None)
        _changes.limit = None

    def __exit__(self, *exc):
        _changes.limit = self._saved


def _bound_changeset_views():
    from trac.versioncontrol import cache
    from trac.versioncontrol.web_ui.changeset import ChangesetModule
    from trac.web.chrome import add_warning
    from tracopt.versioncontrol.svn import svn_fs
    for cls in (cache.CachedChangeset, svn_fs.SubversionChangeset):
        cls.get_changes = _bounded(cls.get_changes)
    svn_fs.SubversionRepository.get_changes = _bounded(svn_fs.SubversionRepository.get_changes)
    process = ChangesetModule.process_request

    def bounded_process(self, req):
        _changes.limit = LIMITS['changeset_paths']
        _changes.truncated = False
        try:
            result = process(self, req)
        finally:
            _changes.limit = None
        if _changes.truncated:
            add_warning(req, 'This changeset changed more than %d paths: only the first %d are shown.'
                        % (LIMITS['changeset_paths'], LIMITS['changeset_paths']))
        return result

    ChangesetModule.process_request = bounded_process


# ---- sessions ----

_save = trac.web.session.DetachedSession.save


def _bounded_save(self):
    if not self.authenticated:
        # Anonymous visitors never write into a project's database.
        return
    items = sorted(self.items(), key=lambda kv: len(kv[1] or ''))
    keep = [(k, v) for k, v in items if len(k) <= 256 and len((v or '').encode('utf-8')) <= LIMITS['session_value_bytes']]
    keep = dict(keep[:LIMITS['session_keys']])
    if len(keep) != len(self):
        for k in list(self):
            if k not in keep:
                dict.pop(self, k, None)
    return _save(self)


# ---- threads per project ----

_gate_lock = threading.Lock()
_in_flight = {}


class Busy(Exception):
    pass


def enter(group, project):
    """A slot for one request of ``project``; raises Busy when it has its share in flight."""
    anon = group == ANON_GROUP
    cap = LIMITS['anon_project_requests' if anon else 'project_requests']
    key = (anon, project)
    with _gate_lock:
        n = _in_flight.get(key, 0)
        if n >= cap:
            raise Busy(cap)
        _in_flight[key] = n + 1
    if anon:
        _lower_priority()
    return key


def leave(key):
    with _gate_lock:
        n = _in_flight.get(key, 1) - 1
        if n:
            _in_flight[key] = n
        else:
            _in_flight.pop(key, None)


def _lower_priority():
    # Linux nice is per thread; raising it needs no privilege (and cannot be undone, which is fine:
    # every thread of the anonymous group serves anonymous requests only).
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < LIMITS['anon_nice']:
            os.setpriority(os.PRIO_PROCESS, tid, LIMITS['anon_nice'])
    except OSError:
        pass


class Released(object):
    """The response body, with the project's slot given back when the server is done with it."""

    def __init__(self, body, key):
        self._body = body
        self._key = key

    def __iter__(self):
        return iter(self._body)

    def close(self):
        try:
            close = getattr(self._body, 'close', None)
            if close:
                close()
        finally:
            key, self._key = self._key, None
            if key is not None:
                leave(key)


# ---- the sandbox ----

_SANDBOX = ('Content-Security-Policy', "sandbox; default-src 'none'; style-src 'unsafe-inline'")


def sandboxing(start_response):
    """start_response that adds the sandbox to anything but Trac's own HTML pages."""

    def start(status, headers, exc_info=None):
        names = {k.lower(): v for k, v in headers}
        ctype = names.get('content-type', '').split(';', 1)[0].strip().lower()
        if ctype != 'text/html' or 'content-disposition' in names:
            headers = [(k, v) for k, v in headers if k.lower() != 'content-security-policy'] + [_SANDBOX]
        return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

    return start


def install():
    _Cursor.execute = _bounded_execute
    _Cursor.fetchall = _bounded_fetchall
    trac.web.session.DetachedSession.save = _bounded_save
    _bound_changeset_views()
