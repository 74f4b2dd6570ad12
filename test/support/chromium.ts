// Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by playwright-core.
// Tests skip, visibly, where it is absent; MEDIA_STORAGE_REQUIRE_BROWSER=1 (set by .ci/run) makes
// that a failure instead.
import { existsSync } from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';
import { describe, it } from 'vitest';
import { tempDir } from './tmp.js';

export const CHROMIUM = process.env.MEDIA_STORAGE_CHROMIUM_PATH ?? '/usr/bin/chromium';
export const haveBrowser = existsSync(CHROMIUM);

/** Registers the failing or warning placeholder for a browser suite when Chromium is missing. */
export function reportMissingBrowser(suite: string): void {
  if (haveBrowser) return;
  if (process.env.MEDIA_STORAGE_REQUIRE_BROWSER === '1') {
    describe(suite, () => {
      it(`needs ${CHROMIUM} (MEDIA_STORAGE_REQUIRE_BROWSER=1)`, () => {
        throw new Error(`${CHROMIUM} is missing but MEDIA_STORAGE_REQUIRE_BROWSER=1: install it with apt-get install -y chromium`);
      });
    });
  } else {
    console.warn(`[media-storage] ${suite}: browser tests SKIPPED: ${CHROMIUM} not found (apt-get install -y chromium to run them)`);
  }
}

/** A fresh headless Chromium with its own profile; `close` removes the profile too. */
export async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = await tempDir('chromium-profile');
  const context = await chromium.launchPersistentContext(profile.dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      await profile.remove();
    },
  };
}
