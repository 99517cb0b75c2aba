/*
 * The console's one client module, served as /console/assets/console.js (no build step: it is
 * written here as it is sent). It only adds to server-rendered pages: on the live view it opens
 * the event stream, writes each second's figures, redraws the charts and puts streamed checkouts
 * at the top of the table. It writes text only (textContent, attributes), never HTML.
 */
export const CONSOLE_SCRIPT = String.raw`
const HISTORY = 300;
const HEIGHT = 40;
const ROWS = 50;

function points(values) {
  const top = Math.max(1, ...values);
  const offset = HISTORY - values.length;
  return values.map((v, i) => (offset + i) + ',' + (HEIGHT - (v / top) * (HEIGHT - 2) - 1).toFixed(1)).join(' ');
}

function money(minor, currency) {
  const negative = minor.startsWith('-');
  const digits = (negative ? minor.slice(1) : minor).padStart(3, '0');
  return (negative ? '-' : '') + digits.slice(0, -2) + '.' + digits.slice(-2) + ' ' + currency;
}

function cell(row, text, className) {
  const td = document.createElement('td');
  if (className) td.className = className;
  if (text instanceof Node) td.append(text);
  else td.textContent = text;
  row.append(td);
  return td;
}

function checkoutRow(checkout) {
  const row = document.createElement('tr');
  row.dataset.checkoutId = checkout.id;
  row.dataset.status = checkout.status;
  const link = document.createElement('a');
  link.href = '/console/checkouts/' + encodeURIComponent(checkout.id);
  const code = document.createElement('code');
  code.textContent = checkout.id.slice(0, 8);
  link.append(code);
  cell(row, link);
  const status = document.createElement('span');
  status.className = 'status status-' + checkout.status.toLowerCase();
  status.textContent = checkout.status;
  cell(row, status);
  cell(row, checkout.reason || '');
  cell(row, checkout.customerId);
  cell(row, money(checkout.total, checkout.currency), 'number');
  const time = document.createElement('time');
  time.dateTime = checkout.createdAt;
  time.textContent = checkout.createdAt.slice(11, 23);
  cell(row, time);
  return row;
}

function upsert(table, checkout) {
  const body = table.tBodies[0];
  const old = [...body.rows].find((row) => row.dataset.checkoutId === checkout.id);
  const row = checkoutRow(checkout);
  if (old) old.replaceWith(row);
  else body.prepend(row);
  while (body.rows.length > ROWS) body.rows[body.rows.length - 1].remove();
  document.getElementById('no-checkouts')?.remove();
}

function startLive() {
  const status = document.getElementById('live-status');
  const table = document.getElementById('checkouts');
  const charts = [...document.querySelectorAll('svg.spark')].map((svg) => ({
    svg,
    field: svg.dataset.field,
    values: JSON.parse(svg.dataset.values || '[]'),
  }));
  const source = new EventSource('/console/events');
  source.addEventListener('open', () => {
    status.textContent = 'Live: updated every second by this order process.';
  });
  source.addEventListener('error', () => {
    status.textContent =
      source.readyState === EventSource.CLOSED
        ? 'Stopped: reload the page (the session may have ended, or too many pages are open).'
        : 'Reconnecting…';
  });
  source.addEventListener('metrics', (event) => {
    const sample = JSON.parse(event.data);
    for (const figure of document.querySelectorAll('.value[data-field]')) {
      figure.textContent = String(sample[figure.dataset.field]);
    }
    for (const chart of charts) {
      chart.values.push(Number(sample[chart.field]) || 0);
      if (chart.values.length > HISTORY) chart.values.shift();
      chart.svg.querySelector('polyline').setAttribute('points', points(chart.values));
    }
  });
  source.addEventListener('checkout', (event) => upsert(table, JSON.parse(event.data)));
}

if (document.getElementById('live')) startLive();
`;
