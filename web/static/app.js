// Keelson web UI: small progressive enhancements on server-rendered pages. Every page works
// without this file except the two panels that read other APIs (path rules, backups).
// Budget: 12 KB. No framework, no build step.
'use strict';
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || '';
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of kids) if (c != null) e.append(c);
    return e;
  };
  async function api(method, path, body) {
    const r = await fetch('/api/v1' + path, {
      method,
      credentials: 'same-origin',
      headers: body ? { 'content-type': 'application/json', 'x-csrf-token': csrf } : { 'x-csrf-token': csrf },
      body: body ? JSON.stringify(body) : undefined,
    });
    let data = null;
    try {
      data = await r.json();
    } catch {
      data = null;
    }
    return { status: r.status, data };
  }
  const errText = (res) => (res.data && res.data.error ? res.data.error.message : 'HTTP ' + res.status);
  const expired = (box) =>
    box.replaceChildren(
      el(
        'p',
        { class: 'error banner', role: 'alert' },
        'Your session has expired. ',
        el('a', { href: '/login?next=' + encodeURIComponent(location.pathname) + '&expired=1', text: 'Sign in again' }),
      ),
    );

  // A page rendered as the answer to a form post shows its own address.
  const url = document.body.dataset.url;
  if (url && history.replaceState) history.replaceState(null, '', url);

  // Copy buttons.
  document.addEventListener('click', async (ev) => {
    const b = ev.target.closest && ev.target.closest('button.copy');
    if (!b) return;
    const src = document.getElementById(b.dataset.copy);
    if (!src) return;
    try {
      await navigator.clipboard.writeText(src.textContent);
      b.textContent = 'Copied';
    } catch {
      const range = document.createRange();
      range.selectNodeContents(src);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      b.textContent = 'Selected: press Ctrl+C';
    }
    setTimeout(() => (b.textContent = 'Copy'), 2500);
  });

  // Live state of projects still being made.
  const waiting = [...document.querySelectorAll('[data-state-of]')].filter((e) => e.textContent === 'provisioning');
  const slugs = [...new Set(waiting.map((e) => e.dataset.stateOf))];
  for (const slug of slugs) {
    let tries = 0;
    const poll = async () => {
      const res = await api('GET', '/projects/' + slug).catch(() => null);
      const state = res && res.status === 200 ? res.data.state : null;
      if (state)
        for (const e of document.querySelectorAll('[data-state-of="' + slug + '"]')) {
          e.textContent = state;
          e.className = 'state ' + state;
        }
      if ((state === 'provisioning' || !state) && ++tries < 120) setTimeout(poll, 1000);
    };
    setTimeout(poll, 700);
  }

  // Path rules (the authz API): a table; owners edit it and save it all at once.
  const rulesBox = document.getElementById('path-rules');
  if (rulesBox) {
    const slug = rulesBox.dataset.slug;
    const editable = rulesBox.dataset.editable === '1';
    const status = rulesBox.querySelector('[data-status]');
    const ACCESS = [
      ['rw', 'read and write'],
      ['r', 'read only'],
      ['', 'no access'],
    ];
    const rowFor = (rule, i) => {
      if (!editable)
        return el(
          'tr',
          {},
          el('td', {}, el('code', { text: rule.path })),
          el('td', { text: rule.subject }),
          el('td', { text: ACCESS.find((a) => a[0] === rule.access)?.[1] ?? rule.access }),
        );
      const sel = el(
        'select',
        { 'aria-label': 'Access for rule ' + (i + 1), name: 'access' },
        ...ACCESS.map(([v, l]) => el('option', v === rule.access ? { value: v, selected: '' } : { value: v }, l)),
      );
      const tr = el(
        'tr',
        {},
        el(
          'td',
          {},
          el('input', { 'aria-label': 'Path of rule ' + (i + 1), name: 'path', value: rule.path, placeholder: '/trunk/secret' }),
        ),
        el(
          'td',
          {},
          el('input', {
            'aria-label': 'Who, rule ' + (i + 1),
            name: 'subject',
            value: rule.subject,
            placeholder: '@developer, * or a user name',
          }),
        ),
        el('td', {}, sel),
        el('td', {}, el('button', { type: 'button', class: 'small danger', onclick: () => tr.remove(), text: 'Remove' })),
      );
      return tr;
    };
    const load = async () => {
      const res = await api('GET', '/projects/' + slug + '/path-rules').catch(() => null);
      if (!res) return (status.textContent = 'Could not reach the server.');
      if (res.status === 401) return expired(status);
      if (res.status === 404) return (status.textContent = 'Path rules are not available on this host yet.');
      if (res.status !== 200) return (status.textContent = errText(res));
      const tbody = el('tbody', {}, ...res.data.rules.map(rowFor));
      const table = el(
        'table',
        { class: 'rules' },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            el('th', { scope: 'col', text: 'path' }),
            el('th', { scope: 'col', text: 'who' }),
            el('th', { scope: 'col', text: 'access' }),
            editable ? el('th', { scope: 'col' }, el('span', { class: 'sr', text: 'actions' })) : null,
          ),
        ),
        tbody,
      );
      status.textContent = res.data.rules.length ? '' : 'No path rules: roles apply to the whole repository.';
      const msg = el('p', { role: 'status' });
      const parts = [el('div', { class: 'scroll' }, table)];
      if (editable) {
        parts.push(
          el(
            'p',
            {},
            el('button', {
              type: 'button',
              class: 'small',
              onclick: () => tbody.append(rowFor({ path: '/', subject: '@developer', access: 'r' }, tbody.children.length)),
              text: 'Add a rule',
            }),
            ' ',
            el('button', {
              type: 'button',
              onclick: async () => {
                const rules = [...tbody.children].map((tr) => ({
                  path: tr.querySelector('[name=path]').value,
                  subject: tr.querySelector('[name=subject]').value,
                  access: tr.querySelector('[name=access]').value,
                }));
                const r = await api('PUT', '/projects/' + slug + '/path-rules', { rules });
                if (r.status === 401) return expired(msg);
                msg.className = r.status === 200 ? 'notice' : 'error banner';
                msg.textContent = r.status === 200 ? 'Path rules saved.' : errText(r);
              },
              text: 'Save path rules',
            }),
          ),
          msg,
        );
      }
      rulesBox.querySelector('.rules-body')?.remove();
      rulesBox.append(el('div', { class: 'rules-body' }, ...parts));
    };
    load();
  }

  // Backups (the backup API): volume, last good backup per project, recent runs with refusals.
  const bk = document.getElementById('backups');
  if (bk) {
    const status = bk.querySelector('[data-status]');
    const fmtBytes = (n) => {
      const u = ['B', 'KB', 'MB', 'GB', 'TB'];
      let i = 0;
      while (n >= 1024 && i < 4) {
        n /= 1024;
        i++;
      }
      return (i ? n.toFixed(1) : n) + ' ' + u[i];
    };
    const age = (s) =>
      s == null
        ? 'never'
        : s < 90
          ? Math.round(s) + ' s'
          : s < 5400
            ? Math.round(s / 60) + ' min'
            : s < 129600
              ? Math.round(s / 3600) + ' h'
              : Math.round(s / 86400) + ' days';
    const load = async () => {
      const res = await api('GET', '/backups').catch(() => null);
      if (!res) return (status.textContent = 'Could not reach the server.');
      if (res.status === 401) return expired(status);
      if (res.status === 404) return (status.textContent = 'Backups are not available on this host yet.');
      if (res.status !== 200) return (status.textContent = errText(res));
      const d = res.data;
      status.textContent = '';
      const v = d.volume;
      const head = (...h) => el('thead', {}, el('tr', {}, ...h.map((x) => el('th', { scope: 'col', text: x }))));
      const body = el(
        'div',
        { class: 'backups-body' },
        v
          ? el(
              'p',
              { id: 'backup-volume' },
              'Backup volume ',
              el('code', { text: v.path }),
              ': ' +
                fmtBytes(v.freeBytes) +
                ' free of ' +
                fmtBytes(v.totalBytes) +
                (v.reserveBytes ? ', reserve ' + fmtBytes(v.reserveBytes) : '') +
                (v.quota ? '; quota ' + fmtBytes(v.quota.usedBytes) + ' of ' + fmtBytes(v.quota.limitBytes) : '') +
                (v.budget ? '; budget ' + fmtBytes(v.budget.usedBytes) + ' of ' + fmtBytes(v.budget.limitBytes) : '') +
                (v.sameDeviceAsData ? ' (same device as the data: a full disk takes both)' : ''),
            )
          : null,
        el('h3', { text: 'Last good backup per project' }),
        el(
          'div',
          { class: 'scroll' },
          el(
            'table',
            { id: 'backup-projects' },
            head('project', 'last good backup', 'age'),
            el(
              'tbody',
              {},
              ...d.projects.map((p) =>
                el(
                  'tr',
                  {},
                  el('th', { scope: 'row', text: p.slug }),
                  el('td', { text: p.lastGoodAt ? p.lastGoodAt.replace('T', ' ').slice(0, 19) : 'never' }),
                  el('td', { class: p.lastGoodAt ? '' : 'error', text: age(p.lastGoodAgeSeconds) }),
                ),
              ),
            ),
          ),
        ),
        el('h3', { text: 'Recent backups' }),
        el(
          'div',
          { class: 'scroll' },
          el(
            'table',
            { id: 'backup-runs' },
            head('started', 'project', 'kind', 'state', 'size', 'took', 'reason', ''),
            el(
              'tbody',
              {},
              ...d.backups
                .slice(0, 50)
                .map((b) =>
                  el(
                    'tr',
                    {},
                    el('td', { text: (b.startedAt || '').replace('T', ' ').slice(0, 19) }),
                    el('td', { text: b.project ?? '(control)' }),
                    el('td', { text: b.kind }),
                    el('td', {}, el('span', { class: 'state ' + b.state, text: b.state })),
                    el('td', { text: b.bytes != null ? fmtBytes(b.bytes) : '' }),
                    el('td', { text: b.durationMs != null ? (b.durationMs / 1000).toFixed(1) + ' s' : '' }),
                    el('td', { class: b.reason ? 'error' : '', text: b.reason || '' }),
                    el(
                      'td',
                      {},
                      b.project && b.state === 'verified'
                        ? el('a', { href: '/admin/backups/' + b.id + '/restore', text: 'Restore…' })
                        : null,
                    ),
                  ),
                ),
            ),
          ),
        ),
        el(
          'p',
          {},
          el('button', {
            type: 'button',
            onclick: async (ev) => {
              ev.target.disabled = true;
              const r = await api('POST', '/backups', {});
              ev.target.disabled = false;
              if (r.status === 401) return expired(status);
              status.textContent = r.status < 300 ? 'Backup started.' : errText(r);
              load();
            },
            text: 'Run a backup now',
          }),
        ),
      );
      bk.querySelector('.backups-body')?.remove();
      bk.append(body);
    };
    load();
  }
})();
