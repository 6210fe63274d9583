// A viewer watches while r58 is stopped (SIGTERM to PID): how long until the
// page knows the session is over? The server's RTCP BYE + DTLS close_notify
// should tell it at once, not ICE's consent timeout (~16 s).
// Usage: node goodbye.mjs BASE_URL PATH R58_PID
import { launch, until, firstFrame, openPage, pageStats } from './lib.mjs';

const [base, path, pid] = process.argv.slice(2);
const out = {};
const b = await launch();
try {
  const p = await openPage(b, `${base}/${path}/`, 'viewer');
  out.firstFrameMs = await firstFrame(p, 15000);
  out.stateBefore = await p.evaluate(() => window.r58.pc && window.r58.pc.connectionState);
  process.kill(+pid, 'SIGTERM');
  out.toldMs = await until(p, () => window.r58.error != null, 10000);
  out.viewer = await pageStats(p);
} finally {
  await b.close();
}
console.log(JSON.stringify(out));
