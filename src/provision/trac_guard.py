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

And one about identity: Trac's ``trac_auth`` login cookie is checked against Trac's own table,
not Apache's credentials, so it outlived a rotated token or a disabled user. Here Trac trusts only
the user Apache authenticated on this very request (REMOTE_USER); a cookie alone is anonymous.
"""
import pkg_resources

import trac.env
import trac.loader
import trac.web.auth
import trac.web.chrome
from trac.perm import PermissionSystem

_load_installed_eggs = trac.loader.load_eggs('trac.plugins')


def _load_installed_components(env, extra_path=None, loaders=None):
    # An empty search path: entry points of installed distributions only, no plugin folders.
    _load_installed_eggs(env, [], auto_enable=None)


trac.loader.load_components = _load_installed_components
trac.env.load_components = _load_installed_components

_TRAC_TEMPLATES = pkg_resources.resource_filename('trac', 'templates')
_TRAC_HTDOCS = pkg_resources.resource_filename('trac', 'htdocs')


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
