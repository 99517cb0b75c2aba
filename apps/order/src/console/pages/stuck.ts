import { html, type Html } from '../html';
import type { StuckCheckout } from '../stuck-reader';
import { duration, page, time } from './layout';

const KINDS: Record<StuckCheckout['stuck'], string> = {
  'past-deadline': 'past its deadline',
  unacknowledged: 'decided, not acknowledged',
  inquiring: 'prepared, inquiring',
};

/** What is stuck, oldest first: why, since when, and what the system does next and when. */
export function stuckPage(stuck: readonly StuckCheckout[], problems: readonly string[], nowMs: number): Html {
  return page(
    'Stuck',
    html`<main id="stuck-page">
      <h1>Stuck</h1>
      <p class="muted">
        Checkouts past their deadline, decisions not acknowledged, participants holding a prepared checkout and asking
        about it. Nothing here needs a hand unless its next step is overdue: the sweeps resolve them.
      </p>
      ${problems.map((problem) => html`<p class="problem" role="alert">${problem}</p>`)}
      <div class="scroll">
        <table id="stuck">
          <caption>
            ${stuck.length} stuck
          </caption>
          <thead>
            <tr>
              <th scope="col">Order</th>
              <th scope="col">Stuck</th>
              <th scope="col">Waiting on</th>
              <th scope="col">Age</th>
              <th scope="col">Why</th>
              <th scope="col">What happens next, and when</th>
            </tr>
          </thead>
          <tbody>
            ${stuck.map(
              (row) =>
                html`<tr data-checkout-id="${row.id}" data-stuck="${row.stuck}" data-service="${row.service}">
                  <td>
                    <a href="/console/checkouts/${row.id}"><code>${row.id.slice(0, 8)}</code></a>
                  </td>
                  <td>${KINDS[row.stuck]}</td>
                  <td>${row.service}</td>
                  <td class="number">${duration(row.ageMs)}</td>
                  <td>${row.detail}</td>
                  <td>
                    ${row.next}:
                    ${row.nextAt ? html`${time(row.nextAt)} (${nextIn(row.nextAt.getTime() - nowMs)})` : 'at its next run'}
                  </td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>
      ${stuck.length === 0 ? html`<p id="nothing-stuck">Nothing is stuck.</p>` : ''}
    </main>`,
    'stuck',
  );
}

const nextIn = (ms: number): string => (ms <= 0 ? 'due now' : `in ${duration(ms)}`);
