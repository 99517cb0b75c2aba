import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DataSource } from 'typeorm';
import { PROTOCOL_NO_VOTE_REASONS, VOTE_NO_REASONS } from '@shop/contracts';
import { readCheckoutRecord, traceIdOf } from './checkout-record';
import { latestCheckouts, type CheckoutFilter } from './checkouts-reader';
import type { DeadLetterDesk } from './dead-letter-desk';
import { readForm, redirect, sendHtml } from './http';
import type { LiveSampler } from './live-sampler';
import { checkoutPage } from './pages/checkout';
import { checkoutFilters, checkoutsTable } from './pages/checkouts-table';
import { confirmRedrivePage, deadLettersPage } from './pages/dead-letters';
import { messagePage, notFoundPage } from './pages/checkout';
import { page } from './pages/layout';
import { livePage } from './pages/live';
import { stuckPage } from './pages/stuck';
import type { ParticipantsClient } from './participants-client';
import { sequenceOf } from './sequence';
import { readStuck, type CoordinatorTimings } from './stuck-reader';
import { html } from './html';

export interface ConsoleSources {
  db: DataSource;
  sampler: LiveSampler;
  client: ParticipantsClient;
  desk: DeadLetterDesk;
  /** The coordinator, then each participant of services.json: the lanes. */
  services: readonly string[];
  /** The participants asked first (PREPARE_FIRST); the others once these said yes. */
  firstStage: readonly string[];
  timings: CoordinatorTimings;
  /** A trace's page, `{traceId}` in it (CONSOLE_TRACE_URL). */
  traceUrl?: string;
}

const REASONS = [...new Set(['TIMEOUT', ...PROTOCOL_NO_VOTE_REASONS, ...VOTE_NO_REASONS])];
const AGE = /^(\d{1,4})(s|m|h|d)$/;
const SECONDS = { s: 1, m: 60, h: 3_600, d: 86_400 } as const;
const CHECKOUT = /^\/console\/checkouts\/([^/]+)$/;
const REDRIVE = /^\/console\/dead-letters\/([a-z][a-z0-9]*)\/redrive$/;
const MESSAGE_ID = /^[\w.:-]{1,100}$/;

/** The console's pages behind a session (`ConsoleRoutes` checks it first): each reads what it shows when asked. */
export class ConsolePages {
  constructor(private readonly sources: ConsoleSources) {}

  async serve(method: string, url: URL, request: IncomingMessage, response: ServerResponse, admin: string) {
    const { pathname, searchParams } = url;
    const { db, services } = this.sources;
    const redrive = REDRIVE.exec(pathname);
    if (redrive && this.sources.desk.services.includes(redrive[1])) {
      return method === 'POST'
        ? this.redrive(request, response, redrive[1], admin)
        : this.confirm(response, redrive[1], searchParams);
    }
    if (method !== 'GET') return sendHtml(response, 404, notFoundPage('No such form.'));
    if (pathname === '/console' || pathname === '/console/') {
      return sendHtml(response, 200, livePage(this.sources.sampler.history, await latestCheckouts(db)));
    }
    if (pathname === '/console/checkouts') return this.checkouts(response, searchParams);
    const checkout = CHECKOUT.exec(pathname);
    if (checkout) return this.checkout(response, decodeURIComponent(checkout[1]));
    if (pathname === '/console/stuck') {
      const participants = services.slice(1);
      const { stuck, problems } = await readStuck(db, participants, this.sources.client, this.sources.timings);
      return sendHtml(response, 200, stuckPage(stuck, problems, Date.now()));
    }
    if (pathname === '/console/dead-letters') {
      const service = searchParams.get('service');
      const moved = searchParams.get('redriven');
      const notice =
        service && moved !== null
          ? /^\d+$/.test(moved)
            ? `${moved} of ${service}'s dead letters went back to its queue.`
            : `The re-drive of ${service}'s dead letters failed: ${moved}`
          : undefined;
      return sendHtml(response, 200, deadLettersPage(await this.sources.desk.list(), notice));
    }
    return sendHtml(response, 404, notFoundPage(`Nothing at ${pathname}.`));
  }

  private async checkouts(response: ServerResponse, query: URLSearchParams): Promise<void> {
    const age = query.get('age') ?? '';
    const parsed = AGE.exec(age);
    const status = query.get('status') ?? '';
    const filter: CheckoutFilter = {
      status: ['PENDING', 'CONFIRMED', 'CANCELLED'].includes(status) ? status : undefined,
      reason: REASONS.includes(query.get('reason') ?? '') ? query.get('reason')! : undefined,
      ageSeconds: parsed ? Number(parsed[1]) * SECONDS[parsed[2] as keyof typeof SECONDS] : undefined,
      q: query.get('q')?.slice(0, 100) || undefined,
    };
    const rows = await latestCheckouts(this.sources.db, filter);
    const content = html`<main id="checkouts-page">
      <h1>Checkouts</h1>
      ${checkoutFilters(filter, parsed ? age : '', REASONS)}${checkoutsTable(rows, false)}
    </main>`;
    sendHtml(response, 200, page('Checkouts', content, 'checkouts'));
  }

  private async checkout(response: ServerResponse, id: string): Promise<void> {
    const { db, services, client, firstStage, traceUrl } = this.sources;
    const record = await readCheckoutRecord(db, id);
    if (!record) return sendHtml(response, 404, notFoundPage(`No checkout ${id}.`));
    const asked = record.participants.map((p) => p.participant);
    const answers = await Promise.all(asked.map((participant) => client.record(participant, id)));
    const records = Object.fromEntries(asked.map((participant, i) => [participant, answers[i]]));
    const own = Object.fromEntries(
      asked.map((participant, i) => [participant, answers[i].ok ? answers[i].value : undefined]),
    );
    const traceId = traceIdOf(record.messages.find((message) => message.traceparent)?.traceparent);
    sendHtml(
      response,
      200,
      checkoutPage({
        record,
        steps: sequenceOf(record, own, firstStage),
        services,
        records,
        traceUrl: traceUrl && traceId ? traceUrl.replace('{traceId}', traceId) : undefined,
      }),
    );
  }

  private confirm(response: ServerResponse, service: string, query: URLSearchParams): void {
    const messageId = query.get('messageId') ?? undefined;
    if (messageId === undefined && query.get('all') !== '1') return redirect(response, '/console/dead-letters');
    if (messageId !== undefined && !MESSAGE_ID.test(messageId)) return redirect(response, '/console/dead-letters');
    sendHtml(response, 200, confirmRedrivePage(service, messageId));
  }

  private async redrive(request: IncomingMessage, response: ServerResponse, service: string, admin: string) {
    const form = await readForm(request);
    const messageId = form?.get('messageId') ?? undefined;
    const all = form?.get('all') === '1';
    if (!form || (messageId === undefined) === !all || (messageId !== undefined && !MESSAGE_ID.test(messageId))) {
      return sendHtml(
        response,
        400,
        messagePage('bad-request', 'Refused', 'A re-drive takes one messageId, or all=1.'),
      );
    }
    const answer = await this.sources.desk.redrive(admin, service, messageId);
    const outcome = answer.ok ? String(answer.value) : answer.problem;
    const query = new URLSearchParams({ service, redriven: outcome });
    redirect(response, `/console/dead-letters?${query.toString()}`);
  }
}
