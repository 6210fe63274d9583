// The WHEP/WHIP plumbing r58's viewer and publisher pages share. Served
// next to each page (`/cam0/r58.js`), so both work behind any prefix.
window.R58 = {
  // ICE servers from the answer's or OPTIONS' Link headers (RFC 9725).
  iceServersFrom(res) {
    const out = [];
    for (const part of (res.headers.get('Link') || '').split(/,(?=\s*<)/)) {
      const m = part.match(/<([^>]+)>.*rel="ice-server"/);
      if (!m) continue;
      const s = { urls: m[1] };
      const u = part.match(/username="([^"]*)"/), c = part.match(/credential="([^"]*)"/);
      if (u) s.username = u[1];
      if (c) s.credential = c[1];
      out.push(s);
    }
    return out;
  },

  // POST the local offer; the server is ICE-lite and answers at once, and
  // our candidates follow by PATCH. Returns { session, answer }.
  async exchange(pc, url, headers) {
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp', ...headers }, body: pc.localDescription.sdp });
    if (res.status !== 201) throw new Error(res.status + ' ' + (await res.text()).trim());
    const session = new URL(res.headers.get('Location'), url).toString();
    pc.onicecandidate = (ev) => {
      if (!ev.candidate || !ev.candidate.candidate) return;
      const frag = 'a=mid:' + ev.candidate.sdpMid + '\r\na=' + ev.candidate.candidate + '\r\n';
      fetch(session, { method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '*' }, body: frag }).catch(() => {});
    };
    return { session, answer: await res.text() };
  },

  // The server ends a session with DTLS close_notify (publisher left,
  // replaced, kicked); ICE alone would take ~30 s to notice.
  onServerClose(transport, fn) {
    if (transport) transport.onstatechange = () => { if (transport.state === 'closed') fn(); };
  },

  // The selected candidate pair from getStats: type, protocol, remote.
  pair(r) {
    let pair = null;
    r.forEach((x) => { if (x.type === 'transport' && x.selectedCandidatePairId) pair = r.get(x.selectedCandidatePairId); });
    if (!pair) r.forEach((x) => { if (x.type === 'candidate-pair' && x.nominated && x.state === 'succeeded') pair = x; });
    if (!pair) return null;
    const l = r.get(pair.localCandidateId), rem = r.get(pair.remoteCandidateId);
    return { pair, local: l, remote: rem };
  },
};
