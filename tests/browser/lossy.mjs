// Publish and view one path over a lossy network: both legs must repair
// losses by NACK (r58 asks the publisher; r58 answers the viewer).
// Usage: node lossy.mjs BASE_URL PATH SECONDS
import { launch, sleep, until, pageStats, openPage } from './lib.mjs';

const [base, path, secs] = [process.argv[2], process.argv[3], +process.argv[4]];
const out = {};
const [pub, view] = [await launch(), await launch()];
try {
  const p = await openPage(pub, `${base}/${path}/publish?autostart=1&codec=h264&audio=0`, 'publisher');
  out.publishMs = await until(p, () => (window.r58.stats.framesSent || 0) > 10, 20000);
  const v = await openPage(view, `${base}/${path}/`, 'viewer');
  out.viewMs = await until(v, () => (window.r58.stats.framesDecoded || 0) > 0, 20000);
  const before = (await pageStats(v)).framesDecoded || 0;
  await sleep(secs * 1000);
  out.viewer = await pageStats(v);
  out.viewer.decoded = (out.viewer.framesDecoded || 0) - before;
  out.publisher = await pageStats(p);
  out.publisherAnswer = await p.evaluate(() => window.r58.answer);
} finally {
  await Promise.all([pub.close(), view.close()]);
}
console.log(JSON.stringify(out));
