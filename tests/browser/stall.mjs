// A publisher whose media stops while its connection stays up (a frozen
// encoder, a camera unplugged): r58 must give the path up by itself.
// Usage: node stall.mjs BASE_URL API_URL PATH
import { launch, sleep, until, pageStats, openPage } from './lib.mjs';

const [base, api, path] = process.argv.slice(2);
const out = {};
const b = await launch();
try {
  const p = await openPage(b, `${base}/${path}/publish?autostart=1&audio=0`, 'publisher');
  out.publishMs = await until(p, () => (window.r58.stats.framesSent || 0) > 10, 15000);
  await p.evaluate(() => Promise.all(window.r58.pc.getSenders().map((s) => s.replaceTrack(null))));
  const t0 = Date.now();
  for (;;) {
    const info = await (await fetch(`${api}/v3/paths/get/${path}`)).json();
    if (!info.ready) { out.notReadyMs = Date.now() - t0; out.path = info; break; }
    if (Date.now() - t0 > 20000) break;
    await sleep(200);
  }
  out.toldMs = await until(p, () => window.r58.error != null, 5000);
  out.publisher = await pageStats(p);
} finally {
  await b.close();
}
console.log(JSON.stringify(out));
