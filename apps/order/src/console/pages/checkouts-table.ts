import { html, type Html } from '../html';
import type { CheckoutFilter, CheckoutRow } from '../checkouts-reader';
import { money, time } from './layout';

/** The checkouts table (the live view's, the filtered list's): one row per checkout, newest first. */
export function checkoutsTable(rows: readonly CheckoutRow[], live: boolean): Html {
  return html`<div class="scroll">
      <table id="checkouts" ${live ? html` data-live="true"` : ''}>
        <caption>
          ${live ? 'Latest checkouts, as they happen' : 'Checkouts found'}
        </caption>
        <thead>
          <tr>
            <th scope="col">Order</th>
            <th scope="col">Status</th>
            <th scope="col">Reason</th>
            <th scope="col">Customer</th>
            <th scope="col">Total</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          ${rows.map(checkoutRow)}
        </tbody>
      </table>
    </div>
    ${rows.length === 0 ? html`<p class="muted" id="no-checkouts">No checkouts${live ? ' yet' : ' match'}.</p>` : ''}`;
}

/** One row; the client module builds the same shape for the rows it streams in. */
export function checkoutRow(row: CheckoutRow): Html {
  return html`<tr data-checkout-id="${row.id}" data-status="${row.status}">
    <td>
      <a href="/console/checkouts/${row.id}"><code>${row.id.slice(0, 8)}</code></a>
    </td>
    <td><span class="status status-${row.status.toLowerCase()}">${row.status}</span></td>
    <td>${row.reason ?? ''}</td>
    <td>${row.customerId}</td>
    <td class="number">${money(row.total, row.currency)}</td>
    <td>${time(row.createdAt)}</td>
  </tr>`;
}

/** The filters of /console/checkouts (a GET form: the filters are in the URL, never a token). */
export function checkoutFilters(filter: CheckoutFilter, age: string, reasons: readonly string[]): Html {
  const option = (value: string, label: string, selected: string | undefined) =>
    html`<option value="${value}" ${value === (selected ?? '') ? html` selected` : ''}>${label}</option>`;
  return html`<form id="checkout-filters" method="get" action="/console/checkouts" class="filters">
    <div>
      <label for="q">Order or customer</label
      ><input id="q" name="q" type="search" value="${filter.q ?? ''}" maxlength="100" />
    </div>
    <div>
      <label for="status">Status</label
      ><select id="status" name="status">
        ${option('', 'any', filter.status)}${['PENDING', 'CONFIRMED', 'CANCELLED'].map((s) => option(s, s, filter.status))}
      </select>
    </div>
    <div>
      <label for="reason">Reason</label
      ><select id="reason" name="reason">
        ${option('', 'any', filter.reason)}${reasons.map((r) => option(r, r, filter.reason))}
      </select>
    </div>
    <div>
      <label for="age">Created within</label
      ><select id="age" name="age">
        ${[
          ['', 'any time'],
          ['1m', 'the last minute'],
          ['10m', '10 minutes'],
          ['1h', 'an hour'],
          ['24h', 'a day'],
        ].map(([value, label]) => option(value, label, age))}
      </select>
    </div>
    <button type="submit">Filter</button>
  </form>`;
}
