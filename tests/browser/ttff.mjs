// Time from WHEP POST to first decoded frame, over repeated joins in one
// Chromium page. Usage: node ttff.mjs BASE_URL PATH JOINS
// Prints {"ms": [..]} (one value per join) for the bench to summarise.
import { launch, sleep } from './lib.mjs';

const [base, path, joins] = [process.argv[2], process.argv[3] || 'cam0', +(process.argv[4] || 20)];
const b = await launch();
const ms = [];
try {
  const page = await b.ctx.newPage();
  await page.goto(`${base}/${path}/?autostart=0`);
  for (let i = 0; i < joins; i++) {
    await page.evaluate(() => window.r58.start());
    const t0 = Date.now();
    let v = null;
    while (Date.now() - t0 < 10000) {
      v = await page.evaluate(() => window.r58.tFirstFrame != null ? window.r58.tFirstFrame - window.r58.tPost : null);
      if (v != null) break;
      await sleep(10);
    }
    ms.push(v == null ? null : Math.round(v));
    await page.evaluate(() => window.r58.stop());
    // Space joins past the per-path keyframe rate limit (500 ms), as real viewers are.
    await sleep(1000);
  }
} finally {
  await b.close();
}
console.log(JSON.stringify({ ms }));
