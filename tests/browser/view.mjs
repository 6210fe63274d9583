// Open N viewer pages of one path, watch them decode, then end the sessions.
// Usage: node view.mjs BASE_URL PATH VIEWERS SECONDS  (env VIEW_QUERY: page query, e.g. ?relay=1)
// Prints one JSON object: per viewer {before, after, codec, candidate, protocol,
// sessionUrl, deleteStatus}, so the Rust test asserts on facts.
import { launch, sleep } from './lib.mjs';

const [base, path, n, secs] = [process.argv[2], process.argv[3] || 'cam0', +(process.argv[4] || 1), +(process.argv[5] || 5)];
const b = await launch();
const out = { viewers: [] };
try {
  const pages = [];
  for (let i = 0; i < n; i++) {
    const p = await b.ctx.newPage();
    p.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`page ${i}: ${m.text()}\n`); });
    await p.goto(`${base}/${path}/${process.env.VIEW_QUERY || ''}`);
    pages.push(p);
  }
  // Let every viewer connect and start decoding, then measure a window.
  const deadline = Date.now() + 10000;
  for (const p of pages) {
    while (Date.now() < deadline) {
      const f = await p.evaluate(() => window.r58.stats.framesDecoded || 0);
      if (f > 0) break;
      await sleep(100);
    }
  }
  const before = await Promise.all(pages.map((p) => p.evaluate(() => window.r58.stats.framesDecoded || 0)));
  await sleep(secs * 1000 + 1100); // stats refresh once a second
  for (let i = 0; i < n; i++) {
    const s = await pages[i].evaluate(() => ({ ...window.r58.stats, sessionUrl: window.r58.sessionUrl, status: window.r58.status, error: window.r58.error, answer: window.r58.answer, iceServers: window.r58.iceServers }));
    out.viewers.push({ before: before[i], after: s.framesDecoded || 0, ...s });
  }
  if (process.env.NO_DELETE !== '1') {
    for (let i = 0; i < n; i++) {
      // End the session the way a page does, and report what the server said.
      const url = out.viewers[i].sessionUrl;
      if (!url) continue;
      const r = await fetch(url, { method: 'DELETE' });
      out.viewers[i].deleteStatus = r.status;
      const again = await fetch(url, { method: 'DELETE' });
      out.viewers[i].deleteAgainStatus = again.status;
    }
  }
} finally {
  await b.close();
}
console.log(JSON.stringify(out));
