#!/usr/bin/env python3
"""aiortc as a WHEP viewer of r58, for the interop matrix.

    aiortc_view.py URL SECONDS

Offers one recvonly video m-line (aiortc's H.264 is 42001f/42e01f,
packetization-mode 1), decodes what arrives for SECONDS and prints one JSON
object: HTTP status, ICE state, frames decoded, codec, DELETE status.
"""
import asyncio
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import aiortc
from aiortc import RTCPeerConnection, RTCSessionDescription


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/sdp"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Location"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, None, e.read().decode()


async def main(url, secs):
    out = {"aiortc": aiortc.__version__, "frames": 0}
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")

    @pc.on("track")
    def on_track(track):
        async def read():
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                out["frames"] += 1
        asyncio.ensure_future(read())

    @pc.on("iceconnectionstatechange")
    def on_ice():
        if out.get("ice") != "completed":
            out["ice"] = pc.iceConnectionState

    await pc.setLocalDescription(await pc.createOffer())
    status, location, answer = await asyncio.to_thread(
        http, "POST", url, pc.localDescription.sdp.encode())
    out["status"] = status
    if status != 201:
        out["error"] = answer[:200]
    else:
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.sleep(secs)
        codecs = [c.mimeType for t in pc.getTransceivers() for c in (t._codecs or [])]
        out["codec"] = codecs[0].split("/")[1] if codecs else None
        out["deleteStatus"] = (await asyncio.to_thread(
            http, "DELETE", urllib.parse.urljoin(url, location)))[0]
    await pc.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
