import type { ParticipantTransactionRecord } from '@shop/service-kit';
import { html, type Html } from '../html';
import type { CheckoutRecord } from '../checkout-record';
import type { Answer } from '../participants-client';
import type { Step } from '../sequence';
import { duration, money, page, time } from './layout';

export interface CheckoutView {
  record: CheckoutRecord;
  steps: readonly Step[];
  /** The lanes: the coordinator, then every participant of services.json. */
  services: readonly string[];
  records: Readonly<Record<string, Answer<ParticipantTransactionRecord | undefined>>>;
  traceUrl?: string;
}

/** One checkout: its sequence diagram (a lane per service, the steps in time order) and each side's record. */
export function checkoutPage(view: CheckoutView): Html {
  const { record, steps, services } = view;
  const { order, transaction } = record;
  const lane = (service: string) => Math.max(services.indexOf(service), 0) + 1;
  return page(
    `Checkout ${order.id}`,
    html`<main id="checkout" data-checkout-id="${order.id}">
      <h1>Checkout <code>${order.id}</code></h1>
      <dl class="facts">
        <dt>Status</dt>
        <dd>
          <span class="status status-${order.status.toLowerCase()}" id="checkout-status">${order.status}</span
          >${order.reason ? html` (${order.reason})` : ''}
        </dd>
        <dt>Customer</dt>
        <dd>${order.customerId}</dd>
        <dt>Total</dt>
        <dd>
          ${money(order.total, order.currency)}:
          ${order.items.map((item, i) => html`${i ? ', ' : ''}${item.quantity} × ${item.sku}`)}
        </dd>
        <dt>Deadline</dt>
        <dd>${time(transaction?.deadline)}</dd>
        <dt>Complete</dt>
        <dd>${transaction?.completedAt ? time(transaction.completedAt) : 'not yet: some acknowledgement missing'}</dd>
        ${
          view.traceUrl
            ? html`<dt>Trace</dt>
                <dd><a href="${view.traceUrl}" rel="noreferrer">open the trace</a></dd>`
            : ''
        }
      </dl>
      <section id="sequence" aria-labelledby="sequence-title">
        <h2 id="sequence-title">Sequence</h2>
        <div class="diagram lanes-${services.length}">
          <div class="lanes">
            ${services.map((service, i) => html`<div class="lane lane-col-${i + 1}" data-service="${service}">${service}${i === 0 ? html` <span class="muted">(coordinator)</span>` : ''}</div>`)}
          </div>
          <ol class="steps">
            ${steps.map((step, i) => {
              const gap = i === 0 ? undefined : step.at.getTime() - steps[i - 1].at.getTime();
              return html`<li
                class="step lane-col-${lane(step.service)}"
                data-kind="${step.kind}"
                data-service="${step.service}"
                data-at="${step.at.toISOString()}"
                ${step.vote ? html` data-vote="${step.vote}"` : ''}
              >
                <div class="step-head">
                  <span class="step-service">${step.service}</span> <strong>${step.label}</strong>
                </div>
                <div class="step-time">
                  ${time(step.at)}
                  ${gap === undefined ? html`<span class="gap">start</span>` : html`<span class="gap">+${duration(gap)}</span>`}
                </div>
                <p class="rule">${step.rule}</p>
              </li>`;
            })}
          </ol>
        </div>
      </section>
      <section id="coordinator-record" aria-labelledby="coordinator-title">
        <h2 id="coordinator-title">The coordinator's record</h2>
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Participant</th>
                <th scope="col">Vote</th>
                <th scope="col">Voted</th>
                <th scope="col">Acknowledged</th>
                <th scope="col">Re-sends</th>
                <th scope="col">Next re-send</th>
              </tr>
            </thead>
            <tbody>
              ${record.participants.map(
                (p) =>
                  html`<tr data-service="${p.participant}">
                    <td>${p.participant}</td>
                    <td>${p.vote ?? 'none yet'}${p.voteReason ? html` (${p.voteReason})` : ''}</td>
                    <td>${time(p.votedAt)}</td>
                    <td>${time(p.ackedAt)}</td>
                    <td class="number">${p.resends}</td>
                    <td>${time(p.nextResendAt)}</td>
                  </tr>`,
              )}${record.held.map(
                (h) =>
                  html`<tr data-service="${h.participant}">
                    <td>${h.participant}</td>
                    <td colspan="5">
                      not asked: held for stage
                      ${h.stage + 1}${transaction?.decidedAt ? ' (decided first: never asked)' : ''}
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>
      </section>
      <section id="participant-records" aria-labelledby="participants-title">
        <h2 id="participants-title">Each participant's own record</h2>
        ${services.slice(1).map((service) => participantRecord(service, view.records[service]))}
      </section>
    </main>`,
    'checkouts',
  );
}

function participantRecord(
  service: string,
  answer: Answer<ParticipantTransactionRecord | undefined> | undefined,
): Html {
  const body = (() => {
    if (!answer) return html`<p class="muted">Not asked.</p>`;
    if (!answer.ok) return html`<p class="problem">${answer.problem}</p>`;
    const own = answer.value;
    if (!own) return html`<p class="muted">No record: this participant was never asked (or not yet).</p>`;
    return html`<dl class="facts">
      <dt>State</dt>
      <dd class="participant-state">${own.state}${own.voteReason ? html` (${own.voteReason})` : ''}</dd>
      <dt>First seen</dt>
      <dd>${time(own.createdAt)}</dd>
      <dt>Prepared</dt>
      <dd>${time(own.preparedAt)}</dd>
      <dt>Decision applied</dt>
      <dd>${time(own.decidedAt)}</dd>
      <dt>Inquiries</dt>
      <dd>${own.inquiries}${own.lastInquiryAt ? html`, the last at ${time(own.lastInquiryAt)}` : ''}</dd>
      <dt>Messages sent</dt>
      <dd>
        ${own.messages.length === 0 ? 'none kept (pruned after retention)' : own.messages.map((m, i) => html`${i ? ', ' : ''}${m.type} at ${time(m.createdAt)}`)}
      </dd>
    </dl>`;
  })();
  return html`<section class="participant-record" data-service="${service}">
    <h3>${service}</h3>
    ${body}
  </section>`;
}

/** A page that only says what went wrong: 404 (`not-found`) or a refused form (`bad-request`). */
export function messagePage(id: 'not-found' | 'bad-request', title: string, what: string): Html {
  return page(
    title,
    html`<main id="${id}" class="narrow">
      <h1>${title}</h1>
      <p>${what}</p>
      <p><a href="/console">Back to the live view</a></p>
    </main>`,
    'checkouts',
  );
}

export const notFoundPage = (what: string): Html => messagePage('not-found', 'Not found', what);
