import { html, type Html } from '../html';
import type { CheckoutRow } from '../checkouts-reader';
import { HISTORY_SECONDS, type LiveSample } from '../live-sampler';
import { checkoutsTable } from './checkouts-table';
import { page } from './layout';

/** The live figures: element id, label, the sample's field (the client module uses the same ids). */
const FIGURES: ReadonlyArray<{
  id: string;
  label: string;
  field: keyof Omit<LiveSample, 'at'>;
  chart?: keyof LiveSample;
}> = [
  { id: 'decided-per-second', label: 'Decided / s', field: 'decidedPerSecond' },
  { id: 'in-flight', label: 'In flight', field: 'inFlight' },
  { id: 'admission-bound', label: 'Admission bound', field: 'admissionBound' },
  { id: 'shed-per-second', label: 'Shed / s', field: 'shedPerSecond' },
  { id: 'timeouts', label: 'TIMEOUTs (since start)', field: 'timeouts', chart: 'timeoutsPerSecond' },
];

const WIDTH = HISTORY_SECONDS;
const HEIGHT = 40;

/** A sparkline's points for `values` (one a second, the newest at the right edge). */
export function sparkPoints(values: readonly number[]): string {
  const top = Math.max(1, ...values);
  const offset = WIDTH - values.length;
  return values.map((value, i) => `${offset + i},${(HEIGHT - (value / top) * (HEIGHT - 2) - 1).toFixed(1)}`).join(' ');
}

/** The live view: this process's figures, each with a chart of the last minutes, and the latest checkouts. */
export function livePage(history: readonly LiveSample[], rows: readonly CheckoutRow[]): Html {
  const latest = history.at(-1);
  return page(
    'Live',
    html`<main id="live">
      <h1>Live</h1>
      <p class="muted" id="live-status" aria-live="polite">Updated every second by this order process.</p>
      <div class="figures">
        ${FIGURES.map(({ id, label, field, chart }) => {
          const values = history.map((sample) => sample[chart ?? field] as number);
          return html`<figure class="figure">
            <figcaption>${label}</figcaption>
            <p class="value" id="${id}" data-field="${field}">${latest ? latest[field] : 0}</p>
            <svg
              class="spark"
              id="chart-${id}"
              data-field="${chart ?? field}"
              data-values="${JSON.stringify(values)}"
              viewBox="0 0 ${WIDTH} ${HEIGHT}"
              preserveAspectRatio="none"
              role="img"
              aria-label="${label}, the last ${HISTORY_SECONDS / 60} minutes"
            >
              <polyline points="${sparkPoints(values)}"></polyline>
            </svg>
          </figure>`;
        })}
      </div>
      <h2>Latest checkouts</h2>
      ${checkoutsTable(rows, true)}
    </main>`,
    'live',
  );
}
