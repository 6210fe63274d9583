// A browser publishes its fake camera into a publisher path through the
// built-in page, then views that path in a second tab: Chromium (playwright-
// core) or Debian's Firefox ESR (puppeteer-core over WebDriver BiDi;
// playwright needs its own patched Firefox, which cannot be downloaded here).
// Usage: node pubview.mjs chromium|firefox BASE_URL PATH CODEC SECONDS
// Prints one JSON object of facts for the Rust test to assert on.
import puppeteer from 'puppeteer-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, sleep } from './lib.mjs';

const [which, base, path, codec, secs] = [process.argv[2], process.argv[3], process.argv[4], process.argv[5], +(process.argv[6] || 4)];

async function firefox() {
  const dir = mkdtempSync(join(tmpdir(), 'r58-firefox-'));
  const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr',
  headless: true,
  userDataDir: dir,
  extraPrefsFirefox: {
    'media.navigator.streams.fake': true,
    'media.navigator.permission.disabled': true,
    // The pages are plain http on a test address.
    'media.devices.insecure.enabled': true,
    'media.getusermedia.insecure.enabled': true,
    // Raw host candidates, loopback included; no mDNS names.
    'media.peerconnection.ice.obfuscate_host_addresses': false,
    'media.peerconnection.ice.loopback': true,
    'media.autoplay.default': 0,
    // No update checks, telemetry or captive-portal probes from the test.
    'app.update.enabled': false,
    'network.captive-portal-service.enabled': false,
    'datareporting.policy.dataSubmissionEnabled': false,
    'toolkit.telemetry.enabled': false,
  },
  });
  return {
    version: await browser.version(),
    newPage: () => browser.newPage(),
    close: async () => { await browser.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}

async function chromium() {
  const b = await launch();
  return { version: 'chromium/' + b.ctx.browser()?.version?.(), newPage: () => b.ctx.newPage(), close: b.close };
}

const browser = which === 'firefox' ? await firefox() : await chromium();
const stats = (p) => p.evaluate(() => ({ ...window.r58.stats, status: window.r58.status, error: window.r58.error }));
async function until(p, fn, ms) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await p.evaluate(fn)) return Date.now() - t0;
    await sleep(100);
  }
  return null;
}
const out = { browser: browser.version };
try {
  const pub = await browser.newPage();
  await pub.goto(`${base}/${path}/publish?autostart=1&codec=${codec}`);
  out.publishMs = await until(pub, () => (window.r58.stats.framesSent || 0) > 10, 15000);
  out.publisher = await stats(pub);
  const view = await browser.newPage();
  await view.goto(`${base}/${path}/`);
  out.viewerFirstFrameMs = await until(view, () => (window.r58.stats.framesDecoded || 0) > 0, 15000);
  const before = (await stats(view)).framesDecoded || 0;
  await sleep(secs * 1000 + 1100); // the page refreshes its stats once a second
  out.viewer = await stats(view);
  out.viewer.decoded = (out.viewer.framesDecoded || 0) - before;
  await pub.evaluate(() => window.r58.stop());
} catch (e) {
  out.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
