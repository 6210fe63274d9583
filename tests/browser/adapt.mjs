// View one path for SECONDS and record, once a second, what the page
// decoded: frames, size, freezes. For the adaptive-quality tests and bench.
// Usage: node adapt.mjs BASE_URL PATH SECONDS [VIEWERS]
// Prints {viewers: [{timeline: [{t, frames, width, height, freezes, freezeMs}], sessionUrl}]}.
import { launch, sleep, openPage, until } from './lib.mjs';

const [base, path, secs, n] = [process.argv[2], process.argv[3], +process.argv[4], +(process.argv[5] || 1)];
const b = await launch();
const out = { viewers: [], t0: 0 };
try {
  const pages = [];
  for (let i = 0; i < n; i++) pages.push(await openPage(b, `${base}/${path}/`, `viewer ${i}`));
  for (const p of pages) await until(p, () => (window.r58.stats.framesDecoded || 0) > 0, 20000);
  const timelines = pages.map(() => []);
  const t0 = Date.now();
  out.t0 = t0; // epoch ms of second 0, to place outside events on the timeline
  for (let t = 1; t <= secs; t++) {
    await sleep(t0 + t * 1000 - Date.now());
    for (let i = 0; i < n; i++) {
      // The page's own stats lag by up to a second; read the receiver directly.
      const s = await pages[i].evaluate(async () => {
        const pc = window.r58.pc;
        let v = null;
        if (pc) (await pc.getStats()).forEach((x) => { if (x.type === 'inbound-rtp' && x.kind === 'video') v = x; });
        return v ? { frames: v.framesDecoded || 0, width: v.frameWidth || 0, height: v.frameHeight || 0,
          freezes: v.freezeCount || 0, freezeMs: Math.round(1000 * (v.totalFreezesDuration || 0)) } : null;
      });
      timelines[i].push({ t, ...(s || {}) });
    }
  }
  for (let i = 0; i < n; i++) {
    const sessionUrl = await pages[i].evaluate(() => window.r58.sessionUrl);
    out.viewers.push({ timeline: timelines[i], sessionUrl });
  }
} finally {
  await b.close();
}
console.log(JSON.stringify(out));
