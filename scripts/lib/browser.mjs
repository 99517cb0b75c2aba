// The browser the console's browser suite (test/browser) drives: Debian's Chromium, headless.
import fs from 'node:fs';

/** Where the suite finds Chromium: CHROMIUM_PATH, or Debian's package. */
export const chromiumPath = () => process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Debian packages the browser suite needs that are not installed yet. */
export function browserPackagesNeeded() {
  return fs.existsSync(chromiumPath()) ? [] : ['chromium'];
}
