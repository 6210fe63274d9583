// Publish Chromium's fake camera (H.264 + Opus) into a path for a while,
// for benches that need a live WHIP source. Usage: node publish.mjs BASE PATH SECS [simulcast]
// (simulcast: three encodings, full, half and quarter size).
import { launch, sleep, until, pageStats, openPage } from './lib.mjs';

const [base, path, secs] = [process.argv[2], process.argv[3], +(process.argv[4] || 60)];
const simulcast = process.argv[5] === 'simulcast' ? '&simulcast=1' : '';
const b = await launch();
let out = {};
try {
  const p = await openPage(b, `${base}/${path}/publish?autostart=1&codec=h264${simulcast}`, 'publisher');
  out.startMs = await until(p, () => (window.r58.stats.framesSent || 0) > 0, 15000);
  await sleep(secs * 1000);
  out = { ...out, ...(await pageStats(p)) };
  await p.evaluate(() => window.r58.stop());
} finally {
  await b.close();
}
console.log(JSON.stringify(out));
