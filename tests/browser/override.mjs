// A path with override_publisher: a second publisher takes over (a guest
// reconnecting) and the viewer keeps playing through the change. Both
// publish VP8, the codec browsers prefer when left to choose.
// Usage: node override.mjs BASE_URL PATH
import { launch, sleep, until, pageStats as stats, openPage } from './lib.mjs';

const [base, path] = process.argv.slice(2);
const out = {};
const [a, b, view] = [await launch(), await launch(), await launch()];
try {
  const first = await openPage(a, `${base}/${path}/publish?autostart=1&audio=0&codec=vp8`, 'first');
  out.firstMs = await until(first, () => (window.r58.stats.framesSent || 0) > 10, 15000);
  const v = await openPage(view, `${base}/${path}/`, 'viewer');
  out.viewerMs = await until(v, () => (window.r58.stats.framesDecoded || 0) > 10, 15000);
  const second = await openPage(b, `${base}/${path}/publish?autostart=1&audio=0&codec=vp8`, 'second');
  out.secondMs = await until(second, () => (window.r58.stats.framesSent || 0) > 10, 15000);
  out.firstEndedMs = await until(first, () => window.r58.error != null, 5000);
  out.first = await stats(first);
  const before = (await stats(v)).framesDecoded || 0;
  await sleep(3000);
  out.viewer = await stats(v);
  out.viewer.decodedIn3s = (out.viewer.framesDecoded || 0) - before;
  out.second = await stats(second);
} finally {
  await Promise.all([a.close(), b.close(), view.close()]);
}
console.log(JSON.stringify(out));
