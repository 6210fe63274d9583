// A guest publishes with Chromium's fake camera over WHIP (the built-in
// publisher page); a second Chromium watches the path over WHEP; then the
// error answers a client can get; then the publisher leaves.
// Usage: node whip.mjs BASE_URL API_URL PATH TOKEN
// Prints one JSON object of facts for the Rust test to assert on.
import { launch, sleep, until, pageStats as stats, openPage } from './lib.mjs';

const [base, api, path, token] = process.argv.slice(2);
const out = {};
const post = (p, url, sdpFrom, headers) => p.evaluate(async ([url, kind, headers]) => {
  // A fresh offer made in the page: a publisher's (sendonly camera) or a
  // viewer's that only takes VP8.
  const pc = new RTCPeerConnection();
  if (kind === 'publish') {
    const s = await navigator.mediaDevices.getUserMedia({ video: true });
    pc.addTransceiver(s.getVideoTracks()[0], { direction: 'sendonly' });
  } else {
    const t = pc.addTransceiver('video', { direction: 'recvonly' });
    t.setCodecPreferences(RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => c.mimeType === 'video/VP8'));
  }
  await pc.setLocalDescription(await pc.createOffer());
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp', ...headers }, body: pc.localDescription.sdp });
  pc.close();
  return { status: r.status, text: (await r.text()).trim() };
}, [url, sdpFrom, headers]);

const pub = await launch();
const view = await launch();
try {
  const p = await openPage(pub, `${base}/${path}/publish?autostart=1&codec=h264&token=${token}`, 'publisher');
  out.publishMs = await until(p, () => (window.r58.stats.framesSent || 0) > 10, 15000);
  out.publisher = await stats(p);
  // Ready in the API once media flows.
  for (let i = 0; i < 50; i++) {
    const list = await (await fetch(`${api}/v3/paths/list`)).json();
    out.pathWhilePublished = list.items.find((x) => x.name === path);
    if (out.pathWhilePublished.ready) break;
    await sleep(100);
  }
  const t0 = Date.now();
  const v = await openPage(view, `${base}/${path}/`, 'viewer');
  out.viewerFirstFrameMs = await until(v, () => (window.r58.stats.framesDecoded || 0) > 0, 15000) == null ? null : Date.now() - t0;
  const before = (await stats(v)).framesDecoded || 0;
  await sleep(3000);
  out.viewer = await stats(v);
  out.viewer.decodedIn3s = (out.viewer.framesDecoded || 0) - before;
  out.viewerAnswer = await v.evaluate(() => window.r58.answer);
  out.publisher = await stats(p);
  const whip = `${base}/${path}/whip`;
  out.noToken = await post(p, whip, 'publish', {});
  out.secondPublisher = await post(p, whip, 'publish', { Authorization: `Bearer ${token}` });
  out.localSource = await post(p, `${base}/cam0/whip`, 'publish', {});
  out.vp8Viewer = await post(p, `${base}/${path}/whep`, 'view', {});
  // The publisher leaves: the viewer's session must end, not freeze.
  await p.evaluate(() => window.r58.stop());
  out.publisherDelete = await p.evaluate(() => window.r58.deleteStatus);
  out.viewerEndedMs = await until(v, () => window.r58.error != null, 10000);
  out.viewerAfter = await stats(v);
  const list = await (await fetch(`${api}/v3/paths/list`)).json();
  out.pathAfter = list.items.find((x) => x.name === path);
} finally {
  await pub.close();
  await view.close();
}
console.log(JSON.stringify(out));
