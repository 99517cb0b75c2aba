import { html, type Html, type HtmlValue } from '../html';

/** The console's sections, in the header of every signed-in page. */
const NAV = [
  { href: '/console', label: 'Live', id: 'live' },
  { href: '/console/checkouts', label: 'Checkouts', id: 'checkouts' },
  { href: '/console/stuck', label: 'Stuck', id: 'stuck' },
  { href: '/console/dead-letters', label: 'Dead letters', id: 'dead-letters' },
] as const;

export type Section = (typeof NAV)[number]['id'];

/** A whole page: the one stylesheet, the one module (deferred by nature), and the page's content. */
export function page(title: string, content: HtmlValue, section?: Section): Html {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · checkout console</title>
        <link rel="stylesheet" href="/console/assets/console.css" />
        <script type="module" src="/console/assets/console.js"></script>
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/console">Checkout console</a>
          ${section === undefined ? '' : navigation(section)}
        </header>
        ${content}
      </body>
    </html> `;
}

function navigation(section: Section): Html {
  return html`<nav aria-label="Console sections">
    <ul>
      ${NAV.map(
        (item) =>
          html`<li>
            <a href="${item.href}" ${item.id === section ? html` aria-current="page"` : ''}>${item.label}</a>
          </li>`,
      )}
    </ul>
    <form method="post" action="/console/sign-out" class="sign-out"><button type="submit">Sign out</button></form>
  </nav>`;
}

/** A time as the console writes it: ISO in the attribute, hh:mm:ss.mmm (UTC) in the text. */
export const time = (at: Date | string | null | undefined): Html => {
  if (!at) return html`<span class="muted">—</span>`;
  const iso = new Date(at).toISOString();
  return html`<time datetime="${iso}">${iso.slice(11, 23)}</time>`;
};

/** A duration in the unit that reads best. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const sign = ms < 0 ? '−' : '';
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${sign}${Math.round(abs)} ms`;
  if (abs < 60_000) return `${sign}${(abs / 1_000).toFixed(abs < 10_000 ? 2 : 1)} s`;
  if (abs < 3_600_000) return `${sign}${Math.floor(abs / 60_000)} min ${Math.round((abs % 60_000) / 1_000)} s`;
  return `${sign}${Math.floor(abs / 3_600_000)} h ${Math.round((abs % 3_600_000) / 60_000)} min`;
}

/** A money amount in minor units (a bigint as text), as major.minor with its currency. */
export function money(minor: string, currency: string): string {
  const negative = minor.startsWith('-');
  const digits = (negative ? minor.slice(1) : minor).padStart(3, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -2)}.${digits.slice(-2)} ${currency}`;
}
