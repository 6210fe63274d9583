// View a path for SECONDS and measure its sound as a viewer gets it: the
// audio track's codec, samples received and concealed, the level a WebAudio
// analyser hears on the received track, video frames decoded, and lip sync:
// the test source clicks at every whole second and flashes its picture
// white at the same instant; each flash's display time is paired with the
// nearest click's play time. Usage: node audio.mjs BASE_URL PATH SECONDS
// The tap's own delay is measured alongside (tapMs: clicks scheduled at
// known times through a MediaStream into an identical tap).
// Prints {codec, samples, concealed, peak, frames, offsetsMs: [...], tapMs: [...]}.
import { launch, sleep, openPage, until } from './lib.mjs';

const [base, path, secs] = [process.argv[2], process.argv[3], +process.argv[4]];
const b = await launch();
let out = {};
try {
  const p = await openPage(b, `${base}/${path}/`, 'viewer');
  await until(p, () => (window.r58.stats.framesDecoded || 0) > 0, 20000);
  await p.evaluate(async () => {
    const pc = window.r58.pc;
    const rx = pc.getReceivers().find((r) => r.track.kind === 'audio');
    const m = (window.measure = { peak: 0, clicks: [], flips: [] });
    if (!rx) return;
    // Chromium feeds remote audio to WebAudio only while an element plays it.
    const el = new Audio(); el.srcObject = new MediaStream([rx.track]); el.muted = true; el.play();
    const ctx = new AudioContext();
    const src = ctx.createMediaStreamSource(new MediaStream([rx.track]));
    const proc = ctx.createScriptProcessor(256, 2, 1);
    let quietUntil = 0;
    proc.onaudioprocess = (ev) => {
      const d = ev.inputBuffer.getChannelData(0);
      for (let i = 0; i < d.length; i++) {
        const a = Math.abs(d[i]);
        if (a > m.peak) m.peak = a;
        // A click is far above the tone (0.1): its onset, once per 500 ms.
        const t = ev.playbackTime + i / ctx.sampleRate;
        if (a > 0.4 && t > quietUntil) {
          const ts = ctx.getOutputTimestamp();
          m.clicks.push(ts.performanceTime + (t - ts.contextTime) * 1000);
          quietUntil = t + 0.5;
        }
      }
    };
    src.connect(proc); proc.connect(ctx.destination);
    // The tap's own delay: clicks scheduled at known context times go
    // through a MediaStream into an identical tap. The remote track reaches
    // WebAudio the same way, so its clicks are late by this much as well.
    const dest = ctx.createMediaStreamDestination();
    const probe = ctx.createMediaStreamSource(dest.stream);
    const proc2 = ctx.createScriptProcessor(256, 2, 1);
    m.sent = []; m.heard = [];
    let quiet2 = 0;
    proc2.onaudioprocess = (ev) => {
      const d = ev.inputBuffer.getChannelData(0);
      for (let i = 0; i < d.length; i++) {
        const t = ev.playbackTime + i / ctx.sampleRate;
        if (Math.abs(d[i]) > 0.4 && t > quiet2) {
          const ts = ctx.getOutputTimestamp();
          m.heard.push(ts.performanceTime + (t - ts.contextTime) * 1000);
          quiet2 = t + 0.5;
        }
      }
    };
    probe.connect(proc2); proc2.connect(ctx.destination);
    const click = ctx.createBuffer(1, 480, ctx.sampleRate);
    click.getChannelData(0).fill(0.9);
    // The context's clock maps to performance time only once it runs.
    while (!(ctx.getOutputTimestamp().contextTime > 0)) await new Promise((w) => setTimeout(w, 50));
    const ts0 = ctx.getOutputTimestamp();
    for (let k = 0; k < 6; k++) {
      const at = ctx.currentTime + 0.5 + k * 0.7;
      const b = ctx.createBufferSource(); b.buffer = click; b.connect(dest); b.start(at);
      m.sent.push(ts0.performanceTime + (at - ts0.contextTime) * 1000);
    }
    // The picture's mean brightness per displayed frame; a flash is a jump up.
    const video = document.querySelector('video');
    const c = document.createElement('canvas'); c.width = 16; c.height = 9;
    const g = c.getContext('2d', { willReadFrequently: true });
    let last = null;
    const onFrame = (now, meta) => {
      g.drawImage(video, 0, 0, 16, 9);
      const px = g.getImageData(0, 0, 16, 9).data;
      let sum = 0; for (let i = 0; i < px.length; i += 4) sum += px[i] + px[i + 1] + px[i + 2];
      const y = sum / (px.length / 4) / 3;
      if (last !== null && y - last > 60) m.flips.push(meta.expectedDisplayTime);
      last = y;
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  });
  const before = await p.evaluate(() => window.r58.stats.framesDecoded || 0);
  await sleep(secs * 1000);
  out = await p.evaluate(async () => {
    const r = await window.r58.pc.getStats();
    let a = null, codec = null;
    r.forEach((x) => { if (x.type === 'inbound-rtp' && x.kind === 'audio') a = x; });
    if (a && a.codecId) codec = r.get(a.codecId).mimeType;
    const m = window.measure;
    // Each flash against the nearest click: positive = sound late.
    const offsetsMs = m.flips.map((f) => {
      let best = null;
      for (const c of m.clicks) if (best === null || Math.abs(c - f) < Math.abs(best)) best = c - f;
      return best === null ? null : Math.round(best);
    }).filter((x) => x !== null && Math.abs(x) < 500);
    // Each scheduled click against the first heard after it.
    const tapMs = m.sent.map((t) => m.heard.find((h) => h >= t - 5)).map((h, i) => h === undefined ? null : Math.round(h - m.sent[i]))
      .filter((x) => x !== null && x < 500);
    return { codec, tapMs, samples: a ? a.totalSamplesReceived : 0, concealed: a ? a.concealedSamples : 0,
      peak: m.peak, clicks: m.clicks.length, flips: m.flips.length, offsetsMs,
      frames: window.r58.stats.framesDecoded || 0 };
  });
  out.frames -= before;
} finally {
  await b.close();
}
console.log(JSON.stringify(out));
