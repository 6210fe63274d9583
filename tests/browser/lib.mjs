// Headless Debian Chromium for r58's browser tests. Flags from the harness
// notes: no background networking (the machine has no internet), raw-IP
// host candidates, fake media devices for publishers.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function launch() {
  const dir = mkdtempSync(join(tmpdir(), 'r58-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    ignoreDefaultArgs: ['--enable-automation'],
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      // A real viewer offers only `.local` mDNS host candidates; R58_REAL_VIEWER=1 keeps it that way.
      ...(process.env.R58_REAL_VIEWER === '1' ? [] : ['--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream=fps=30', '--disable-features=WebRtcHideLocalIpsWithMdns'])],
  });
  return { ctx, close: async () => { await ctx.close(); rmSync(dir, { recursive: true, force: true }); } };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Wait until the viewer page has decoded at least one frame; returns ms.
export async function firstFrame(page, timeoutMs) {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const n = await page.evaluate(() => (window.r58 && window.r58.stats.framesDecoded) || 0);
    if (n > 0) return Date.now() - t0;
    await sleep(50);
  }
  return null;
}

// Poll `fn` in the page until it is truthy; ms it took, or null on timeout.
export async function until(page, fn, ms) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await page.evaluate(fn)) return Date.now() - t0;
    await sleep(100);
  }
  return null;
}

// What an r58 page (viewer or publisher) reports about itself.
export const pageStats = (p) => p.evaluate(() => ({ ...window.r58.stats, status: window.r58.status, error: window.r58.error }));

// A page printing errors to stderr, tagged, so a failing test shows them.
export async function openPage(b, url, tag) {
  const p = await b.ctx.newPage();
  p.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`${tag}: ${m.text()}\n`); });
  await p.goto(url);
  return p;
}
