"""What one request may take of the Trac daemon every tenant shares.

Every project's Trac runs in the same few mod_wsgi daemon processes (one group for signed-in
users, one for anonymous visitors: see Keelson's Apache configuration). Python runs one thread at a
time per process, so a request that computes for long, or holds a thread while it waits, takes that
from everyone. The bounds here, each a setting (trac.wsgi sets ``LIMITS`` from Keelson's config):

- **threads and CPU per payer**: a signed-in user pays for their requests (in any project),
  anonymous visitors' requests are paid by the project they visit. A payer has at most
  ``user_requests`` requests in flight per process (``heavy_requests`` in the heavy group,
  ``anon_project_requests`` for a project's anonymous visitors) and a CPU budget (``cpu_share``
  seconds per second, ``cpu_burst`` at once); past either, its next request is answered 503 at
  once, so a flood costs the flooder, not another tenant. Static files (``/chrome/``) are free.
- **priorities**: the anonymous group's threads run at nice ``anon_nice`` and the heavy group's at
  ``heavy_nice``, so when a tenant's ordinary pages and a flood of expensive ones want the same CPU,
  the ordinary pages win.
- **long lists**: the changeset page, diff and zip list at most ``changeset_paths`` changed paths,
  the source browser ``folder_entries`` entries of a folder, the log ``log_entries`` revisions.
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
import time

import trac.db.sqlite_backend
import trac.web.session
from trac.core import TracError

LIMITS = {
    'report_rows': 10000,
    'report_bytes': 16 * 1024 * 1024,
    'report_value_bytes': 1024 * 1024,
    'user_requests': 3,
    'heavy_requests': 2,
    'anon_project_requests': 2,
    'anon_nice': 19,
    'heavy_nice': 19,
    'cpu_share': 0.1,
    'cpu_burst': 3.0,
    'session_keys': 64,
    'session_value_bytes': 16 * 1024,
    'changeset_paths': 1000,
    'folder_entries': 1000,
    'log_entries': 1000,
}

#: The process groups Keelson's Apache configuration routes requests to: anonymous visitors, and
#: signed-in users' expensive views (reports, queries, changesets, the source browser, log,
#: timeline, search); everything else signed-in goes to the third, ``keelson-trac``.
ANON_GROUP = 'keelson-trac-anon'
HEAVY_GROUP = 'keelson-trac-heavy'

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
                             LIMITS['report_value_bytes'] if _reporting() else MAX_VALUE_BYTES)
    return _execute(self, sql, args)


#: Largest string or blob any statement may make (randomblob(1e9) would take a gigabyte); a
#: report's values are held to LIMITS['report_value_bytes'] instead.
MAX_VALUE_BYTES = 32 * 1024 * 1024


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


# ---- long lists ----
#
# One revision may change any number of paths and one folder hold any number of entries; Trac's
# changeset page, diff and zip list every changed path (20,000 took 7.8 s and 330 MB of one daemon
# process per GET), its source browser every entry of a folder (20,000: 15 s, 14.8 MB of HTML), its
# log any ``limit=``. Inside those views a list stops after its limit (the page says so).
# Everything else (the permission check above all, which must see every path) reads whole lists.

_changes = threading.local()


def _bounded(get_list):
    def wrapper(*args, **kwargs):
        limit = getattr(_changes, 'limit', None)
        n = 0
        for item in get_list(*args, **kwargs):
            if limit is not None and n >= limit:
                _changes.truncated = True
                return
            n += 1
            yield item
    return wrapper


class whole_change_lists(object):
    """Within it, lists are never cut (for the permission check)."""

    def __enter__(self):
        self._saved = getattr(_changes, 'limit', None)
        _changes.limit = None

    def __exit__(self, *exc):
        _changes.limit = self._saved


def _listing_limited(module, key, warning):
    from trac.web.chrome import add_warning
    process = module.process_request

    def bounded_process(self, req):
        _changes.limit = LIMITS[key]
        _changes.truncated = False
        try:
            result = process(self, req)
        finally:
            _changes.limit = None
        if _changes.truncated:
            add_warning(req, warning % (LIMITS[key], LIMITS[key]))
        return result

    module.process_request = bounded_process


def _bound_long_lists():
    from trac.versioncontrol import cache
    from trac.versioncontrol.web_ui.browser import BrowserModule
    from trac.versioncontrol.web_ui.changeset import ChangesetModule
    from trac.versioncontrol.web_ui.log import LogModule
    from tracopt.versioncontrol.svn import svn_fs
    for cls in (cache.CachedChangeset, svn_fs.SubversionChangeset):
        cls.get_changes = _bounded(cls.get_changes)
    svn_fs.SubversionRepository.get_changes = _bounded(svn_fs.SubversionRepository.get_changes)
    svn_fs.SubversionNode.get_entries = _bounded(svn_fs.SubversionNode.get_entries)
    _listing_limited(ChangesetModule, 'changeset_paths',
                     'This changeset changed more than %d paths: only the first %d are shown.')
    _listing_limited(BrowserModule, 'folder_entries',
                     'This folder has more than %d entries: only the first %d are shown.')
    process_log = LogModule.process_request

    def bounded_log(self, req):
        if req.args.getint('limit', 0) > LIMITS['log_entries']:
            req.args['limit'] = LIMITS['log_entries']
        return process_log(self, req)

    LogModule.process_request = bounded_log


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


# ---- threads and CPU per tenant ----
#
# Who pays for a request: a signed-in user (whichever project they look at: a stranger must not be
# able to use up a public project's share and lock its members out), or, for anonymous visitors,
# the project they visit (anonymous visitors have no name). Each payer has at most so many requests
# in flight per process, and a CPU budget per process: the thread CPU time its requests used is its
# debt, which drains at ``cpu_share`` seconds per second; past ``cpu_burst`` seconds of debt its next
# request is answered 503 until the debt has drained. Python runs one thread at a time, so threads
# alone bound nothing: four threads rendering ordinary pages in a loop took four fifths of a process.

_gate_lock = threading.Lock()
_in_flight = {}
#: payer -> (CPU seconds owed, when last updated)
_debts = {}


class Busy(Exception):
    """args: (what is full, the limit, seconds to wait)"""


def _payer(group, project, user):
    if group == ANON_GROUP or not user:
        return ('anon', project), LIMITS['anon_project_requests']
    if group == HEAVY_GROUP:
        return ('heavy', user), LIMITS['heavy_requests']
    return ('user', user), LIMITS['user_requests']


def _debt(payer, now):
    owed, at = _debts.get(payer, (0.0, now))
    return max(0.0, owed - (now - at) * LIMITS['cpu_share'])


class Slot(object):
    def __init__(self, payer):
        self.payer = payer
        self.cpu0 = time.thread_time()
        #: CPU spent for this request outside this thread (highlighting workers).
        self.extra = 0.0


_current = threading.local()


def charge(seconds):
    """Adds CPU spent elsewhere for the request this thread serves (a highlighting worker) to
    its payer's bill."""
    slot = getattr(_current, 'slot', None)
    if slot is not None:
        slot.extra += max(0.0, seconds)


def enter(group, project, user):
    """A slot for one request of ``project`` by ``user`` (None: anonymous); raises Busy when its
    payer has its share of threads in flight here or has used its CPU budget."""
    payer, cap = _payer(group, project, user)
    now = time.monotonic()
    with _gate_lock:
        if _in_flight.get(payer, 0) >= cap:
            raise Busy('requests', cap, 2)
        owed = _debt(payer, now)
        if owed > LIMITS['cpu_burst']:
            raise Busy('cpu', LIMITS['cpu_burst'], int((owed - LIMITS['cpu_burst']) / LIMITS['cpu_share']) + 1)
        _in_flight[payer] = _in_flight.get(payer, 0) + 1
    nice = {ANON_GROUP: LIMITS['anon_nice'], HEAVY_GROUP: LIMITS['heavy_nice']}.get(group)
    if nice:
        _lower_priority(nice)
    slot = _current.slot = Slot(payer)
    return slot


def leave(slot):
    """Gives the slot back and charges its payer the CPU time this thread used for it."""
    used = max(0.0, time.thread_time() - slot.cpu0) + slot.extra
    if getattr(_current, 'slot', None) is slot:
        _current.slot = None
    now = time.monotonic()
    with _gate_lock:
        n = _in_flight.get(slot.payer, 1) - 1
        if n:
            _in_flight[slot.payer] = n
        else:
            _in_flight.pop(slot.payer, None)
        owed = _debt(slot.payer, now) + used
        if owed > 0:
            _debts[slot.payer] = (owed, now)
        else:
            _debts.pop(slot.payer, None)
        if len(_debts) > 10000:
            for k in [k for k in _debts if _debt(k, now) == 0]:
                del _debts[k]
            while len(_debts) > 10000:  # still full of debtors: the oldest entries go
                del _debts[next(iter(_debts))]


def _lower_priority(nice):
    # Linux nice is per thread; raising it needs no privilege (and cannot be undone, which is fine:
    # every thread of a group serves that group's requests only).
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:
        pass


class Released(object):
    """The response body, with the slot given back (and its CPU charged) when the server is done with it."""

    def __init__(self, body, slot):
        self._body = body
        self._slot = slot

    def __iter__(self):
        return iter(self._body)

    def close(self):
        try:
            close = getattr(self._body, 'close', None)
            if close:
                close()
        finally:
            slot, self._slot = self._slot, None
            if slot is not None:
                leave(slot)


# ---- Trac's own static files ----

def serve_static(environ, start_response, htdocs):
    """``/chrome/common/<file>``: Trac's own static files, served straight from its htdocs folder
    (Debian's files, some of them its symlinks to shared JavaScript) without opening an environment
    or counting against anyone's share; anything else under ``/chrome/`` is a cheap 404 (Keelson
    serves no ``/chrome/site/``, and no component of its Trac has other static folders)."""
    import mimetypes
    info = environ.get('PATH_INFO', '')
    rel = info[len('/chrome/common/'):] if info.startswith('/chrome/common/') else ''
    parts = rel.split('/')
    full = os.path.join(htdocs, *parts) if rel and all(p and not p.startswith('.') for p in parts) else ''
    if not full or not os.path.isfile(full):
        start_response('404 Not Found', [('Content-Type', 'text/plain; charset=utf-8')])
        return [b'Not found\n']
    ctype = mimetypes.guess_type(full)[0] or 'application/octet-stream'
    f = open(full, 'rb')
    size = os.fstat(f.fileno()).st_size
    start_response('200 OK', [('Content-Type', ctype), ('Content-Length', str(size)),
                              ('Cache-Control', 'public, max-age=86400')])
    wrapper = environ.get('wsgi.file_wrapper')
    return wrapper(f, 65536) if wrapper else iter(lambda: f.read(65536), b'')


def is_file_wrapper(environ, body):
    """Whether ``body`` is mod_wsgi's file wrapper (a download Trac handed over whole)."""
    wrapper = environ.get('wsgi.file_wrapper')
    return isinstance(wrapper, type) and isinstance(body, wrapper)


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
    _bound_long_lists()
