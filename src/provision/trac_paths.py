"""Path rules in Trac, decided by Subversion's own authz code.

Trac's ``AuthzSourcePolicy`` reads the repository's authz file with a parser of its own and has two
gaps that let Trac show what ``mod_authz_svn`` hides:

- a changeset none of whose paths the user may read is not refused, it is left undecided, and the
  next policy (``DefaultPermissionPolicy``) grants ``CHANGESET_VIEW``: log, timeline, RSS and search
  then showed the message, author and paths of a revision that touched only a closed folder;
- its parser is not libsvn's (it knows neither ``~`` nor ``:glob:``, and its precedence rules are its
  own), so the two could disagree on any file Keelson may one day render.

Here every question goes to ``svn_repos_authz_check_access``, the function ``mod_authz_svn`` calls,
on the same file. A path is readable when libsvn says so for this user. A changeset is viewable
when the user may read every path it changed, and the source of every copy or move (or it changed
none): ``svn log`` shows the message of
only such a revision (one with a closed path shows at most its author and date, and none of them
when every path is closed); Trac lists no other in its log, timeline, RSS or search, and its file page
and blame column show only the number of one. The answer is always True or False, never "undecided", so no
later policy can widen it.
"""
import collections
import os
import re
import threading

import svn.core
import svn.repos

from trac.versioncontrol.api import RepositoryManager

import trac_limits
from trac.versioncontrol import svn_authz

_READ = svn.repos.svn_authz_read
# libsvn's authz code keeps process-wide state that must be set up once, before any thread asks
# (its own "not thread-safe" initialiser); every pool here is a child of this one.
_root = svn.core.Pool()
svn.repos.authz_initialize(_root)
_lock = threading.Lock()
#: authz file -> (stat key, parsed authz, its pool). libsvn's authz object fills a per-user cache
#: lazily from its pool, so checks on one object are serialised (each takes microseconds).
_parsed = {}
_SECTION = re.compile(rb'^\[(/[^\]\r\n]*)\]\s*$', re.M)


def _authz(file):
    st = os.stat(file)
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    hit = _parsed.get(file)
    if hit and hit[0] == key:
        return hit[1], hit[2]
    pool = svn.core.Pool(_root)
    with open(file, 'rb') as f:
        text = f.read()
    # libsvn reads the file itself (as mod_authz_svn does); a stream over a Python buffer would
    # leave the parsed rules pointing into memory Python frees.
    authz = svn.repos.authz_read(file, True, pool)
    paths = ['/'] + [m.decode('utf-8') for m in _SECTION.findall(text) if m != b'/']
    old = _parsed.get(file)
    _parsed[file] = (key, authz, paths, pool)
    if old:
        old[3].destroy()
    return authz, paths


def readable(file, repo_name, user, path):
    """What mod_authz_svn answers for a read of ``path`` by ``user`` (None: anonymous); with
    ``path`` None, whether the user may read anything at all in the repository."""
    with _lock:
        authz, paths = _authz(file)
        scratch = svn.core.Pool(_root)
        try:
            for p in ([path] if path is not None else paths):
                if svn.repos.authz_check_access(authz, repo_name, p, user, _READ, scratch):
                    return True
            return False
        finally:
            scratch.destroy()


_HANDLED = svn_authz.AuthzSourcePolicy._handled_perms


def _check_permission(self, action, username, resource, perm):
    realm = resource.realm if resource else None
    if (realm, action) not in _HANDLED:
        return None
    file = self.authz_file
    if not file or not os.path.isfile(file):
        return False
    user = None if username == 'anonymous' else username
    # The repository's own name in mod_authz_svn is its directory name under SVNParentPath, which
    # Keelson makes the project's slug; [/path] sections (all Keelson writes) apply to any name.
    repo_name = os.path.basename(os.path.dirname(os.path.dirname(file)))
    if resource is None:
        # "May this user read anything at all in the repository?" (menus, the log's entry check):
        # libsvn's question with no path.
        return readable(file, repo_name, user, None)
    try:
        repos = RepositoryManager(self.env).get_repository(resource.parent.id)
    except Exception:
        return False
    if repos is None:
        return False
    scope = getattr(repos, 'scope', '/') or '/'

    def can_read(p):
        full = '/' + '/'.join(x for x in (scope.strip('/'), (p or '').strip('/')) if x)
        return readable(file, repo_name, user, full)

    if realm == 'source':
        return can_read(resource.id)
    if realm == 'changeset':
        try:
            rev = repos.normalize_rev(resource.id)
            key = (file, _authz_key(file), user, repos.id, rev)
            hit = _changesets.get(key)
            if hit is None:
                with trac_limits.whole_change_lists():
                    hit = all(_change_readable(can_read, change) for change in repos.get_changeset(rev).get_changes())
                with _lock:
                    while len(_changesets) >= 20000:
                        _changesets.popitem(last=False)  # the oldest answer goes first
                    _changesets[key] = hit
            return hit
        except Exception:
            return False
    return False


#: (authz file, its version, user, repository, revision) -> may view the changeset.
_changesets = collections.OrderedDict()


def _change_readable(can_read, change):
    """One changed path, as libsvn's svn_repos_check_revision_access sees it: the path, and the
    source of a copy or move (a readable file copied from a closed one shows nothing of the
    revision in ``svn log``)."""
    path, _kind, _change, base_path = change[0], change[1], change[2], change[3]
    if not can_read(path):
        return False
    return not base_path or base_path.strip('/') == path.strip('/') or can_read(base_path)


def _authz_key(file):
    st = os.stat(file)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _annotate_without_closed_messages():
    """Trac's blame column shows each line's revision with its author and message as a tooltip,
    without asking whether the user may see that changeset; here a revision the user may not
    view shows its number only."""
    from trac.util.html import tag
    from trac.versioncontrol.web_ui.browser import BlameAnnotator
    annotate = BlameAnnotator.annotate

    def guarded(self, row, lineno):
        if 0 < lineno <= len(self.annotations):
            rev = self.annotations[lineno - 1]
            if rev not in self.chgset_data:
                chgset = self.changesets[lineno - 1]
                if 'CHANGESET_VIEW' not in self.context.perm(chgset.resource):
                    self.chgset_data[rev] = (tag.a('[%s]' % self.repos.short_rev(rev)), '')
        return annotate(self, row, lineno)

    BlameAnnotator.annotate = guarded


class _Withheld(object):
    """A changeset the user may not view, as the file page shows it: its number and date only."""

    def __init__(self, chgset):
        self.rev = chgset.rev
        self.date = chgset.date
        self.resource = chgset.resource
        self.author = ''
        self.message = ''


def _file_page_without_closed_messages():
    """Trac's file page shows the author and message of the revision that last changed the file,
    without asking whether the user may see that changeset."""
    from trac.versioncontrol.web_ui.browser import BrowserModule
    render_file = BrowserModule._render_file

    def guarded(self, req, context, repos, node, rev=None):
        data = render_file(self, req, context, repos, node, rev)
        chgset = data.get('changeset') if isinstance(data, dict) else None
        if chgset is not None and 'CHANGESET_VIEW' not in req.perm(chgset.resource):
            data['changeset'] = _Withheld(chgset)
        return data

    BrowserModule._render_file = guarded


def install():
    svn_authz.AuthzSourcePolicy.check_permission = _check_permission
    _annotate_without_closed_messages()
    _file_page_without_closed_messages()
