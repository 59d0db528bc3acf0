#!/usr/bin/python3
"""Syntax highlighting out of the Trac daemon, with a time limit.

Tenants choose what Pygments reads: a wiki ``{{{#!scala`` block, a committed file, a ticket, a
preview, a commit message. Pygments' lexers are regular expressions, and some backtrack
exponentially: in bookworm's Pygments 2.14 a 57-byte Scala string held one regex for 34 s. Python's
``re`` never lets go of the interpreter lock while it matches, and nothing can interrupt it, so in
the daemon every other tenant's page on that process waited as long.

So the daemon never runs a lexer. ``PygmentsRenderer._generate`` hands the text to a small pool of
worker processes (this file run as a script, as the Trac user, at nice 19, with a memory limit):
a worker that has not answered within ``SECONDS`` is killed, the request's text is shown without
highlighting (Trac falls back to its plain renderer), and a fresh worker takes its place. An input
that ran out of time is remembered (by digest) and shown plain at once when it is asked for again. The
daemon thread that waits sleeps on a pipe, holding no lock.
"""
import collections
import hashlib
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time

#: Seconds one highlighting may take (trac.wsgi sets Keelson's configured value).
SECONDS = 2.0
#: Workers per daemon process; a request that finds none free within WAIT is not highlighted.
WORKERS = 2
WAIT = 0.5
#: Address space of a worker.
WORKER_MEMORY = 256 * 1024 * 1024
PYTHON = '/usr/bin/python3'

_HEADER = struct.Struct('>I')


class HighlightFailed(Exception):
    pass


def _send(fd, obj):
    data = json.dumps(obj).encode('utf-8')
    os.write(fd, _HEADER.pack(len(data)))
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exactly(fd, n, deadline):
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise HighlightFailed('timed out')
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise HighlightFailed('worker exited')
        buf.extend(chunk)
    return bytes(buf)


def _recv(fd, deadline=None):
    (n,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size, deadline))
    return json.loads(_read_exactly(fd, n, deadline).decode('utf-8'))


class _Worker(object):
    def __init__(self):
        self.proc = subprocess.Popen(
            [PYTHON, '-I', '-B', os.path.abspath(__file__), str(WORKER_MEMORY)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            close_fds=True, env={'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8'})

    def ask(self, req, seconds):
        # The deadline covers sending too: a worker that stopped reading cannot hold the thread.
        deadline = time.monotonic() + seconds
        _send(self.proc.stdin.fileno(), req)
        answer = _recv(self.proc.stdout.fileno(), deadline)
        if 'error' in answer:
            raise HighlightFailed(answer['error'])
        return answer['html']

    def kill(self):
        try:
            self.proc.kill()
            self.proc.wait(5)
        except Exception:
            pass


class Pool(object):
    def __init__(self):
        self._idle = []
        self._count = 0
        self._cond = threading.Condition()
        self._pid = os.getpid()

    def _take(self):
        deadline = time.monotonic() + WAIT
        with self._cond:
            if self._pid != os.getpid():  # forked: the parent's workers are not ours
                self._idle, self._count, self._pid = [], 0, os.getpid()
            while not self._idle and self._count >= WORKERS:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HighlightFailed('every highlighter is busy')
                self._cond.wait(left)
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return _Worker()
        except Exception:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _give_back(self, worker, ok):
        with self._cond:
            if ok and worker.proc.poll() is None:
                self._idle.append(worker)
            else:
                self._count -= 1
            self._cond.notify()
        if not ok:
            worker.kill()

    def highlight(self, lexer_name, options, text):
        key = hashlib.sha256(json.dumps([lexer_name, options, text], sort_keys=True).encode('utf-8')).digest()
        if key in _timed_out:
            # This very input already ran out of time here: shown plain at once, not tried again.
            raise HighlightFailed('timed out before')
        worker = self._take()
        ok = False
        started = time.monotonic()
        try:
            html = worker.ask({'lexer': lexer_name, 'options': options, 'text': text}, SECONDS)
            ok = True
            return html
        except HighlightFailed as e:
            if str(e) == 'timed out':
                _remember_timeout(key)
            raise
        except Exception as e:
            raise HighlightFailed(str(e))
        finally:
            # The worker's time is the request's: its payer is billed for it (see trac_limits; not
            # imported at the top, since this file is also the worker, which never loads Trac).
            import trac_limits
            trac_limits.charge(time.monotonic() - started)
            self._give_back(worker, ok)


_pool = Pool()

#: Digests of inputs whose highlighting ran out of time in this process (oldest dropped first), so
#: a page that is requested again costs nothing: the attack is one run of SECONDS per input.
_timed_out = collections.OrderedDict()


def _remember_timeout(key):
    _timed_out[key] = True
    while len(_timed_out) > 1000:
        _timed_out.popitem(last=False)


def install():
    """Replaces Trac's in-process highlighting with the pool's."""
    from markupsafe import Markup
    import trac.mimeview.pygments as tp

    def _generate(self, language, content, context=None):
        lexer_name = self._lexer_alias_to_name(language)
        options = {'stripnl': False}
        options.update(self._lexer_options.get(lexer_name, {}))
        if context:
            options.update(context.get_hint('lexer_options', {}))
        if not isinstance(content, str):
            content = content.decode('utf-8', 'replace')
        return Markup(_pool.highlight(lexer_name, options, content))

    tp.PygmentsRenderer._generate = _generate


# ---- the worker ----

def _serve(memory):
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    os.nice(19)
    from pygments.formatters.html import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    inp, out = sys.stdin.fileno(), sys.stdout.fileno()
    while True:
        try:
            req = _recv(inp)
        except HighlightFailed:
            return
        try:
            lexer = get_lexer_by_name(req['lexer'], **req.get('options', {}))
            # The same formatter settings as Trac's own (PygmentsRenderer._generate).
            formatter = HtmlFormatter(nowrap=True, lineseparator='\n')
            from io import StringIO
            buf = StringIO()
            formatter.format(lexer.get_tokens(req['text']), buf)
            _send(out, {'html': buf.getvalue()})
        except Exception as e:
            _send(out, {'error': '%s: %s' % (type(e).__name__, e)})


if __name__ == '__main__':
    _serve(int(sys.argv[1]))
