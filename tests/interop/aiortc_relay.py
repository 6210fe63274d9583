#!/usr/bin/env python3
"""A WHIP server that is not r58, for the forwarding tests (issue 18).

    aiortc_relay.py LISTEN_IP PORT TOKEN

aiortc takes one publisher per path over WHIP (RFC 9725: POST an offer with
`Authorization: Bearer TOKEN`, 201 with an answer and a Location, DELETE to
end) and fans it out over WHEP at /NAME/whep to browsers (aiortc decodes
and re-encodes: it is a peer, not a media server to measure). GET / is an
empty page, so a browser's WHEP requests are same-origin; GET /stats says
what each path received. Answers are whole (aiortc gathers before it
answers), so nobody needs trickle.

A small HTTP/1.1 server on asyncio streams: aiortc's venv has no web
framework, and this needs only four routes.
"""
import asyncio
import json
import sys
import uuid

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

relay = MediaRelay()
paths = {}  # name -> {"pc", "track", "frames", "id", "publishes"}
sessions = {}  # resource path -> pc
TOKEN = ""


def reply(status, body=b"", headers=None):
    reason = {200: "OK", 201: "Created", 204: "No Content", 401: "Unauthorized",
              404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}",
            "Connection: close", "Access-Control-Allow-Origin: *",
            "Access-Control-Expose-Headers: Location"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def answer(pc, offer):
    await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription.sdp.encode()


async def whip(name, offer):
    old = paths.pop(name, None)
    if old:
        await old["pc"].close()
    pc = RTCPeerConnection()
    entry = {"pc": pc, "track": None, "frames": 0, "publishes": 1 + (old or {}).get("publishes", 0)}

    @pc.on("track")
    def on_track(track):
        if track.kind != "video":
            return
        entry["track"] = track
        # Count what arrives through a relay subscription of our own, so
        # the first viewer is not the only thing pulling frames.
        counted = relay.subscribe(track)

        async def count():
            while True:
                try:
                    await counted.recv()
                except Exception:
                    return
                entry["frames"] += 1
        asyncio.ensure_future(count())

    sdp = await answer(pc, offer)
    rid = uuid.uuid4().hex[:12]
    entry["id"] = rid
    paths[name] = entry
    sessions[f"/{name}/whip/{rid}"] = (name, pc)
    return reply(201, sdp, {"Content-Type": "application/sdp",
                            "Location": f"/{name}/whip/{rid}"})


async def whep(name, offer):
    entry = paths.get(name)
    if not entry or entry["track"] is None:
        return reply(404, b"no publisher")
    pc = RTCPeerConnection()
    pc.addTrack(relay.subscribe(entry["track"]))
    sdp = await answer(pc, offer)
    rid = uuid.uuid4().hex[:12]
    sessions[f"/{name}/whep/{rid}"] = (None, pc)
    return reply(201, sdp, {"Content-Type": "application/sdp",
                            "Location": f"/{name}/whep/{rid}"})


async def route(method, target, headers, body):
    parts = target.split("?")[0].strip("/").split("/")
    if method == "GET" and target == "/":
        return reply(200, b"<!doctype html><title>aiortc relay</title>",
                     {"Content-Type": "text/html"})
    if method == "GET" and target == "/stats":
        stats = {n: {"frames": e["frames"], "publishes": e["publishes"],
                     "connected": e["pc"].connectionState} for n, e in paths.items()}
        return reply(200, json.dumps(stats).encode(), {"Content-Type": "application/json"})
    if method == "POST" and len(parts) == 2 and parts[1] == "whip":
        if TOKEN and headers.get("authorization") != f"Bearer {TOKEN}":
            return reply(401, b"bad token")
        return await whip(parts[0], body.decode())
    if method == "POST" and len(parts) == 2 and parts[1] == "whep":
        return await whep(parts[0], body.decode())
    if method == "DELETE" and target in sessions:
        name, pc = sessions.pop(target)
        if name and paths.get(name, {}).get("pc") is pc:
            del paths[name]
        await pc.close()
        return reply(200)
    if method == "OPTIONS":
        return reply(204, headers={"Access-Control-Allow-Methods": "POST, DELETE",
                                   "Access-Control-Allow-Headers": "Content-Type, Authorization"})
    return reply(404, b"not found")


async def serve(reader, writer):
    try:
        line = (await reader.readline()).decode().split()
        headers = {}
        while True:
            h = (await reader.readline()).decode().strip()
            if not h:
                break
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        writer.write(await route(line[0], line[1], headers, body))
        await writer.drain()
    except Exception as e:  # a bad request closes its connection, nothing else
        print(f"request failed: {e!r}", file=sys.stderr, flush=True)
    finally:
        writer.close()


async def main(host, port):
    server = await asyncio.start_server(serve, host, port)
    print(f"aiortc relay on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    TOKEN = sys.argv[3] if len(sys.argv) > 3 else ""
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
