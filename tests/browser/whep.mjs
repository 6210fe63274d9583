// A plain WHEP viewer, for servers that are not r58 (no r58 page to load):
// open PAGE_URL (the server's own origin, so requests are same-origin), POST
// a whole offer (gathering finished) to WHEP_URL, and count decoded frames.
// Usage: node whep.mjs PAGE_URL WHEP_URL SECONDS
// env WHEP_RETRY_SECS: POST again every 200 ms until a 201 or this long (a
// path that is not up yet); it prints "ready" once Chromium is up.
// Prints one JSON object: {status, firstFrameMs, firstFrameAt (Unix ms),
// tries, before, after, codec, error}.
import { launch, openPage, sleep } from './lib.mjs';

const [page, whep, secs] = [process.argv[2], process.argv[3], +(process.argv[4] || 5)];
const b = await launch();
let out = {};
try {
  const p = await openPage(b, page, 'whep');
  console.log('ready');
  const retryMs = +(process.env.WHEP_RETRY_SECS || 0) * 1000;
  out = await p.evaluate(async ([url, retryMs]) => {
    const end = Date.now() + retryMs;
    for (let tries = 1; ; tries++) {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((done) => {
        if (pc.iceGatheringState === 'complete') return done();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && done();
        setTimeout(done, 3000);
      });
      const t0 = performance.now();
      const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp })
        .catch((e) => ({ status: 0, text: async () => String(e) }));
      const text = await r.text();
      if (r.status !== 201) {
        pc.close();
        if (Date.now() < end) { await new Promise((w) => setTimeout(w, 200)); continue; }
        return { status: r.status, error: text.slice(0, 200), tries };
      }
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
      window.pc = pc;
      window.t0 = t0;
      // End the session when done, so the server stops sending at once.
      const loc = r.headers.get('Location');
      window.resource = loc && new URL(loc, url).href;
      return { status: r.status, tries };
    }
  }, [whep, retryMs]);
  const frames = () => p.evaluate(async () => {
    let n = 0; let codec = '';
    const s = await window.pc.getStats();
    s.forEach((x) => {
      if (x.type === 'inbound-rtp' && x.kind === 'video') n = x.framesDecoded || 0;
      if (x.type === 'codec' && x.mimeType.startsWith('video/')) codec = x.mimeType;
    });
    return { n, codec, ms: performance.now() - window.t0 };
  });
  if (out.status === 201) {
    const deadline = Date.now() + 15000;
    let f = await frames();
    while (f.n === 0 && Date.now() < deadline) { await sleep(50); f = await frames(); }
    out.firstFrameMs = f.n > 0 ? Math.round(f.ms) : null;
    out.firstFrameAt = f.n > 0 ? Date.now() : null;
    out.before = f.n;
    await sleep(secs * 1000);
    f = await frames();
    out.after = f.n;
    out.codec = f.codec;
    out.deleteStatus = await p.evaluate(async () => window.resource
      && (await fetch(window.resource, { method: 'DELETE' })).status);
  }
} finally {
  await b.close();
}
console.log(JSON.stringify(out));
