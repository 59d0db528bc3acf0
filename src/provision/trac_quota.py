"""A project's storage limit in Trac: an attachment, a wiki version, a ticket or a ticket change
that would take the project over it is refused (reads, and Keelson's own calls, are never).

The limit covers the repository and the Trac environment together. Keelson's worker measures both
and writes ``<QUOTA_DIR>/<slug>`` ("LIMIT BASE REV TRAC", the same file the pre-commit hook reads);
here the repository is ``BASE`` plus the revisions after ``REV`` and the transactions in flight,
and the environment is measured now (its files' allocated bytes, as Keelson measures it), so an
attachment is judged on everything already stored, attachments a moment ago included.
"""
import os

import trac.attachment
from trac.core import TracError

#: Set by trac.wsgi from Keelson's layout.
QUOTA_DIR = None
SVN_ROOT = None


def _allocated(path):
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    return st.st_blocks * 512


def _tree(top):
    """Allocated bytes of the regular files under ``top`` (Keelson's du)."""
    total = 0
    for parent, _dirs, files in os.walk(top):
        for f in files:
            p = os.path.join(parent, f)
            if os.path.isfile(p) and not os.path.islink(p):
                total += _allocated(p)
    return total


def _read_words(path):
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return None


def _limit_and_repo(slug):
    """(limit or None, repository bytes) for the project ``slug``."""
    words = _read_words(os.path.join(QUOTA_DIR, slug)) or ['default']
    limit = words[0]
    if limit == 'default':
        limit = (_read_words(os.path.join(QUOTA_DIR, '_default')) or ['none'])[0]
    if not limit.isdigit():
        return None, 0
    repo = os.path.join(SVN_ROOT, slug)
    db = os.path.join(repo, 'db')
    extra = sum(_tree(os.path.join(db, d)) for d in ('txn-protorevs', 'transactions', 'locks'))
    if len(words) == 4 and all(w.isdigit() for w in words[1:]):
        base, rev = int(words[1]), int(words[2])
        youngest = int((_read_words(os.path.join(db, 'current')) or ['0'])[0])
        shard = None
        fmt = _read_words(os.path.join(db, 'format')) or []
        if 'sharded' in fmt and fmt.index('sharded') + 1 < len(fmt):
            shard = int(fmt[fmt.index('sharded') + 1])
        for r in range(rev + 1, youngest + 1):
            sub = str(r // shard) if shard else ''
            extra += _allocated(os.path.join(db, 'revs', sub, str(r)))
            extra += _allocated(os.path.join(db, 'revprops', sub, str(r)))
        return int(limit), base + extra
    return int(limit), _tree(os.path.join(db, 'revs')) + _tree(os.path.join(db, 'revprops')) + extra


def _size(n):
    for unit, div in (('GiB', 1 << 30), ('MiB', 1 << 20)):
        if n >= div:
            return '%.2f %s' % (n / div, unit) if unit == 'GiB' else '%.1f %s' % (n / div, unit)
    return '%d KiB' % (n // 1024)


def check(env, size):
    """Raises TracError when ``size`` more bytes would take the environment's project over its limit."""
    if QUOTA_DIR is None:
        return
    slug = os.path.basename(os.path.normpath(env.path))
    limit, repo = _limit_and_repo(slug)
    if limit is None:
        return
    used = repo + _tree(env.path)
    if used + int(size or 0) > limit:
        raise TracError(
            'Project %s is over its %s storage limit: %s used, and this change adds %s. '
            'Delete attachments or files, or ask the project owner to raise the limit.'
            % (slug, _size(limit), _size(used), _size(int(size or 0))),
            'Storage limit reached')


def _text_bytes(*values):
    return sum(len(v.encode('utf-8')) for v in values if isinstance(v, str))


def _guarded(method, size_of):
    def within_limit(self, *args, **kwargs):
        check(self.env, size_of(self, *args, **kwargs))
        return method(self, *args, **kwargs)

    return within_limit


def install():
    import trac.ticket.model
    import trac.wiki.model

    Attachment = trac.attachment.Attachment
    Attachment.insert = _guarded(Attachment.insert, lambda self, filename, fileobj, size, *a, **k: int(size or 0))
    WikiPage = trac.wiki.model.WikiPage
    WikiPage.save = _guarded(WikiPage.save, lambda self, *a, **k: _text_bytes(self.text))
    Ticket = trac.ticket.model.Ticket
    Ticket.insert = _guarded(Ticket.insert, lambda self, *a, **k: _text_bytes(*self.values.values()))
    Ticket.save_changes = _guarded(
        Ticket.save_changes, lambda self, author=None, comment=None, *a, **k: _text_bytes(comment))
    # Editing a comment keeps the old text too; a wiki version's comment can be rewritten at will.
    Ticket.modify_comment = _guarded(
        Ticket.modify_comment, lambda self, cdate, author, comment, *a, **k: _text_bytes(comment))
    WikiPage.edit_comment = _guarded(WikiPage.edit_comment, lambda self, new_comment, *a, **k: _text_bytes(new_comment))
