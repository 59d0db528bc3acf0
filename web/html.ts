/**
 * Server-rendered HTML: a tagged template that escapes every interpolated value unless it is
 * already `Html` (made by this module), and the page frame every page shares.
 */
export class Html {
  constructor(readonly s: string) {}
  toString(): string {
    return this.s;
  }
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (v: unknown): string => String(v).replace(/[&<>"']/g, (c) => ESC[c]!);

type Part = Html | string | number | boolean | null | undefined | Part[];
function render(v: Part): string {
  if (v === null || v === undefined || v === false) return '';
  if (Array.isArray(v)) return v.map(render).join('');
  if (v instanceof Html) return v.s;
  return esc(v);
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}
export const raw = (s: string): Html => new Html(s);

/** Per-field messages and previous values of a form. */
export interface FormState {
  values: Record<string, string>;
  errors: Record<string, string>;
  /** A message for the form as a whole (no single field). */
  error?: string;
}
export const emptyForm = (values: Record<string, string> = {}): FormState => ({ values, errors: {} });

export interface FieldOpts {
  type?: string;
  autocomplete?: string;
  required?: boolean;
  hint?: string;
  pattern?: string;
  inputmode?: string;
  placeholder?: string;
}

/** A labelled input with its hint and its error, tied together with aria-describedby. */
export function field(f: FormState, id: string, name: string, label: string, o: FieldOpts = {}): Html {
  const err = f.errors[name];
  const hintId = `${id}-hint`;
  const errId = `${id}-err`;
  const described = [o.hint ? hintId : '', err ? errId : ''].filter(Boolean).join(' ');
  const type = o.type ?? 'text';
  const value = type === 'password' ? '' : (f.values[name] ?? '');
  return html`<div class="field${err ? ' invalid' : ''}">
    <label for="${id}">${label}</label>
    <input
      id="${id}"
      name="${name}"
      type="${type}"
      value="${value}"
      ${o.autocomplete ? raw(` autocomplete="${esc(o.autocomplete)}"`) : ''}${o.required ? raw(' required') : ''}${o.inputmode ? raw(` inputmode="${esc(o.inputmode)}"`) : ''}${o.placeholder ? raw(` placeholder="${esc(o.placeholder)}"`) : ''}${described ? raw(` aria-describedby="${described}"`) : ''}${err ? raw(' aria-invalid="true"') : ''}
    />
    ${o.hint ? html`<small id="${hintId}" class="hint">${o.hint}</small>` : ''}${err ? html`<p id="${errId}" class="error" role="alert">${err}</p>` : ''}
  </div>`;
}

export function select(f: FormState, id: string, name: string, label: string, options: readonly string[], fallback: string): Html {
  const cur = f.values[name] ?? fallback;
  const err = f.errors[name];
  return html`<div class="field${err ? ' invalid' : ''}">
    <label for="${id}">${label}</label>
    <select id="${id}" name="${name}" ${err ? raw(` aria-describedby="${id}-err" aria-invalid="true"`) : ''}>
      ${options.map((o) => html`<option value="${o}" ${o === cur ? raw(' selected') : ''}>${o}</option>`)}
    </select>
    ${err ? html`<p id="${id}-err" class="error" role="alert">${err}</p>` : ''}
  </div>`;
}

/** Hidden inputs every state-changing form carries: the CSRF token and the page to come back to. */
export const formMeta = (csrf: string, page: string): Html =>
  html`<input type="hidden" name="_csrf" value="${csrf}" /><input type="hidden" name="_page" value="${page}" />`;

export const formError = (f: FormState): Html | string => (f.error ? html`<p class="error banner" role="alert">${f.error}</p>` : '');

export interface PageUser {
  name: string;
  admin: boolean;
}

export interface PageOpts {
  title: string;
  user?: PageUser;
  csrf: string;
  body: Html;
  /** A notice shown at the top (e.g. "signed out"). */
  notice?: string;
  /** Replace the address bar with this URL (a page rendered as the answer to a POST). */
  url?: string;
  /** The navigation entry to mark as current. */
  current?: string;
  /** Reload the page after this many seconds (a job being followed); works without JavaScript. */
  refreshSeconds?: number;
}

/**
 * Source indentation is not sent: a run of white space that holds a line break becomes one line
 * break, which HTML renders exactly as before (no <pre> or <textarea> is ever rendered here).
 */
const compact = (s: string): string => s.replace(/[ \t]*\n\s*/g, '\n');

export function page(o: PageOpts): string {
  const nav: [string, string, boolean][] = o.user
    ? [
        ['/dashboard', 'My projects', true],
        ['/account', 'Account', true],
        ['/admin', 'Operator', o.user.admin],
      ]
    : [
        ['/signup', 'Sign up', true],
        ['/login', 'Sign in', true],
      ];
  return compact(
    '<!doctype html>\n' +
      html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${o.csrf}">${o.refreshSeconds ? raw(`<meta http-equiv="refresh" content="${Math.round(o.refreshSeconds)}">`) : ''}<title>${o.title} · Keelson</title><link rel="stylesheet" href="/static/style.css"><script src="/static/app.js" defer></script></head>
<body${o.url ? raw(` data-url="${esc(o.url)}"`) : ''}><a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/">Keelson</a><nav aria-label="Main">${nav
        .filter(([, , show]) => show)
        .map(([href, label]) => html`<a href="${href}" ${o.current === href ? raw(' aria-current="page"') : ''}>${label}</a>`)}${
        o.user
          ? html`<form method="post" action="/logout" class="inline">
              ${formMeta(o.csrf, '/')}<button type="submit" class="link">Sign out ${o.user.name}</button>
            </form>`
          : ''
      }</nav></header>
<main id="main">${o.notice ? html`<p class="notice" role="status">${o.notice}</p>` : ''}${o.body}</main></body></html>\n`.s,
  );
}

export function fmtAge(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 129_600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}
