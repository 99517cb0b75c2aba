import path from 'node:path';
import type { Page, Response } from 'playwright-core';

/** Where the README's screenshots live; the browser suite rewrites them on every run. */
export const IMAGES = path.resolve(__dirname, '..', '..', '..', 'docs', 'images');

/** The console's pages (docs: /work/notes/console-contract.md, the console's own routes). */
export const consolePaths = {
  signIn: '/console/sign-in',
  live: '/console',
  checkouts: '/console/checkouts',
  checkout: (id: string) => `/console/checkouts/${encodeURIComponent(id)}`,
  stuck: '/console/stuck',
  deadLetters: '/console/dead-letters',
};

/** Goes to `path` on the console and answers the response of the page it ended on. */
export async function visit(page: Page, base: string, path: string): Promise<Response> {
  const response = await page.goto(new URL(path, base).toString(), { waitUntil: 'load' });
  if (!response) throw new Error(`no response for ${path}`);
  return response;
}

/**
 * Signs in through the form, as a person would: the token typed into the password field,
 * posted in the form's body. Answers the response of the page the form led to.
 */
export async function signIn(page: Page, base: string, token: string): Promise<Response | null> {
  await visit(page, base, consolePaths.signIn);
  await page.locator('#sign-in input#token[type=password]').fill(token);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === consolePaths.signIn),
    page.locator('#sign-in button[type=submit]').click(),
  ]);
  await page.waitForLoadState('load');
  return response;
}

/** The path the tab shows now. */
export const pathOf = (page: Page) => new URL(page.url()).pathname;

/** One step of a checkout's sequence diagram, as the page shows it. */
export interface Step {
  kind: string;
  service: string;
  at: string;
  vote: string | null;
  rule: string;
}

/** Read in the page (a string: the suite is compiled without the DOM's types). */
export function stepsOf(page: Page): Promise<Step[]> {
  return page.evaluate<Step[]>(`[...document.querySelectorAll('#sequence li.step')].map((li) => ({
    kind: li.getAttribute('data-kind') ?? '',
    service: li.getAttribute('data-service') ?? '',
    at: li.getAttribute('data-at') ?? '',
    vote: li.getAttribute('data-vote'),
    rule: li.querySelector('.rule')?.textContent?.trim() ?? '',
  }))`);
}

/** The services whose lanes the sequence diagram draws, left to right. */
export function lanesOf(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(
    `[...document.querySelectorAll('#sequence .lane')].map((lane) => lane.getAttribute('data-service') ?? '')`,
  );
}
