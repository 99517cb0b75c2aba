import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/**
 * Headless Chromium from Debian's package (scripts/lib/browser.mjs installs it), driven by
 * playwright-core, which downloads no browser of its own. As root, Chromium's sandbox cannot
 * start: --no-sandbox.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...(root ? ['--no-sandbox'] : []), '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/** The desktop viewport the screenshots are taken at: their size does not depend on the machine. */
export const DESKTOP = { width: 1280, height: 800 };
/** A phone's width. */
export const PHONE = { width: 375, height: 740 };

/**
 * One browser tab with a record of what it did: every URL it requested (pages, the module, the
 * event stream, redirects followed), every Content-Security-Policy violation (the page's own
 * `securitypolicyviolation` events and Chromium's console reports) and every console error.
 */
export interface Tab {
  readonly context: BrowserContext;
  readonly page: Page;
  readonly requested: string[];
  readonly cspViolations: string[];
  readonly consoleErrors: string[];
  /** Forgets what was recorded so far (each test checks what it did itself). */
  forget(): void;
  close(): Promise<void>;
}

export async function openTab(browser: Browser, viewport = DESKTOP): Promise<Tab> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, reducedMotion: 'reduce' });
  const requested: string[] = [];
  const cspViolations: string[] = [];
  const consoleErrors: string[] = [];
  context.on('request', (request) => requested.push(request.url()));
  // Called from the listener below; injected by the driver, so the page's CSP does not apply to it.
  await context.exposeBinding('reportCspViolation', (_source, text: string) => cspViolations.push(text));
  await context.addInitScript(
    `document.addEventListener('securitypolicyviolation', (e) =>
       window.reportCspViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber));`,
  );
  context.setDefaultTimeout(10_000); // a missing element fails in seconds, not Playwright's 30
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    if (/Content Security Policy/i.test(text)) cspViolations.push(text);
    const { url } = message.location();
    // The browser's own guess at an icon, not a request of the page's.
    if (new URL(url || 'about:blank').pathname === '/favicon.ico') return;
    consoleErrors.push(url ? `${text} (${url})` : text);
  });
  page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
  const forget = () => {
    cspViolations.length = 0;
    consoleErrors.length = 0;
  };
  return { context, page, requested, cspViolations, consoleErrors, forget, close: () => context.close() };
}

/** How far the page is wider than its viewport (less any scrollbar): above 0, it scrolls sideways. */
export function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
}
