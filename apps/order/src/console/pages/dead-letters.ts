import type { DeadLetter } from '@shop/messaging';
import { html, type Html } from '../html';
import type { Answer } from '../participants-client';
import { page } from './layout';

/** The parked messages of one service, grouped by reason. */
export interface ServiceDeadLetters {
  service: string;
  answer: Answer<DeadLetter[]>;
}

/** Shown per message: its body, cut to this many characters. */
const SAMPLE_CHARS = 600;

const sampleOf = (letter: DeadLetter): string => {
  const text = typeof letter.body === 'string' ? letter.body : JSON.stringify(letter.body, null, 2);
  return text.length > SAMPLE_CHARS ? `${text.slice(0, SAMPLE_CHARS)}…` : text;
};

/** Every service's dead letters: by reason, how many, a sample; a re-drive (one, or all) behind a confirmation. */
export function deadLettersPage(services: readonly ServiceDeadLetters[], notice?: string): Html {
  return page(
    'Dead letters',
    html`<main id="dead-letters-page">
      <h1>Dead letters</h1>
      ${notice ? html`<p role="status" id="redrive-result">${notice}</p>` : ''}
      <p class="muted">
        Messages a service could not handle (invalid, or failing again and again), parked with the reason. Re-drive them
        once the cause is fixed: they go back to the service's queue.
      </p>
      ${services.map(({ service, answer }) => {
        if (!answer.ok)
          return html`<section class="dead-letters" data-service="${service}">
            <h2>${service}</h2>
            <p class="problem">${answer.problem}</p>
          </section>`;
        const byReason = new Map<string, DeadLetter[]>();
        for (const letter of answer.value) {
          const reason = letter.reason ?? 'no reason recorded';
          byReason.set(reason, [...(byReason.get(reason) ?? []), letter]);
        }
        return html`<section class="dead-letters" data-service="${service}" data-count="${answer.value.length}">
          <h2>${service}: ${answer.value.length} parked${answer.value.length >= 100 ? ' (the first 100)' : ''}</h2>
          ${[...byReason].map(
            ([reason, letters]) =>
              html`<article class="dead-letter-reason">
                <h3>${reason} <span class="count">× ${letters.length}</span></h3>
                <details>
                  <summary>A sample: ${letters[0].type ?? 'unknown type'} ${letters[0].messageId ?? ''}</summary>
                  <pre>${sampleOf(letters[0])}</pre>
                </details>
                <ul class="letters">
                  ${letters.map(
                    (letter) =>
                      html`<li data-message-id="${letter.messageId ?? ''}">
                        <code>${letter.messageId ?? 'no id'}</code> ${letter.type ?? ''} ${letter.routingKey ?? ''},
                        attempts ${letter.attempts ?? '?'}
                        ${letter.messageId ? html`<a class="button" href="/console/dead-letters/${service}/redrive?messageId=${encodeURIComponent(letter.messageId)}">Re-drive…</a>` : ''}
                      </li>`,
                  )}
                </ul>
              </article>`,
          )}
          ${answer.value.length > 0 ? html`<p><a class="button" href="/console/dead-letters/${service}/redrive?all=1">Re-drive all of ${service}'s…</a></p>` : html`<p class="muted">None parked.</p>`}
        </section>`;
      })}
    </main>`,
    'dead-letters',
  );
}

/** The confirmation step: says what will be re-driven; only its form's POST does it. */
export function confirmRedrivePage(service: string, messageId: string | undefined): Html {
  const what = messageId ? html`message <code>${messageId}</code>` : html`every message parked now`;
  return page(
    'Confirm re-drive',
    html`<main id="confirm-redrive" class="narrow">
      <h1>Re-drive ${service}'s dead letters?</h1>
      <p>This sends ${what} back to ${service}'s queue. A message still poison is parked again.</p>
      <form id="redrive" method="post" action="/console/dead-letters/${service}/redrive">
        ${messageId ? html`<input type="hidden" name="messageId" value="${messageId}" />` : html`<input type="hidden" name="all" value="1" />`}
        <button type="submit" id="confirm">Confirm</button>
        <a href="/console/dead-letters">Cancel</a>
      </form>
    </main>`,
    'dead-letters',
  );
}
