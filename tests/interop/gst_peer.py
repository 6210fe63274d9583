#!/usr/bin/python3
"""GStreamer's own WebRTC stack (webrtcbin, RSA DTLS certificate) as a WHIP
publisher or a WHEP viewer of r58, for the interop matrix.

    gst_peer.py whip URL SECONDS   publish H.264 (videotestsrc, x264enc)
    gst_peer.py whep URL SECONDS   view a path, decode and count frames
    gst_peer.py whep-passive URL SECONDS
                                   the same, offering `a=setup:passive`, so
                                   webrtcbin is the DTLS server and r58 the client

Prints one JSON object of facts (HTTP status, connection state, frames or RTP
packets) for the Rust test to assert on. Runs with Debian's python3-gi.
"""
import json
import os
import sys
import threading
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

RTP_H264 = "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000"
# What a viewer asks for: the profile and mode every browser decodes.
WANT_H264 = RTP_H264 + ",packetization-mode=(string)1,profile-level-id=(string)42e01f"


def main():
    mode, url, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    passive = mode == "whep-passive"
    mode = "whep" if passive else mode
    Gst.init(None)
    out = {"mode": sys.argv[1], "gstreamer": Gst.version_string()}
    loop = GLib.MainLoop()
    if mode == "whip":
        # GST_PEER_PATTERN/_BITRATE (kbit/s) make a heavier stream for benches.
        pattern = os.environ.get("GST_PEER_PATTERN", "ball")
        kbps = os.environ.get("GST_PEER_BITRATE", "800")
        pipe = Gst.parse_launch(
            f"videotestsrc is-live=true pattern={pattern} ! video/x-raw,width=640,height=480,framerate=30/1 "
            f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate={kbps} "
            "! video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 "
            f"aggregate-mode=zero-latency ! {RTP_H264} ! webrtcbin name=w bundle-policy=max-bundle")
        w = pipe.get_by_name("w")
        sent = {"n": 0}

        def count_sent(_pad, _info):
            sent["n"] += 1
            return Gst.PadProbeReturn.OK
        pipe.get_by_name("w").get_static_pad("sink_0").add_probe(Gst.PadProbeType.BUFFER, count_sent)
    else:
        pipe = Gst.Pipeline.new("viewer")
        w = Gst.ElementFactory.make("webrtcbin", "w")
        w.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        pipe.add(w)
        # webrtcbin 1.22 makes no offer for codec caps without an ssrc
        # ("are missing ssrc"), even for a receive-only m-line.
        w.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
               Gst.Caps.from_string(WANT_H264 + ",ssrc=(uint)58"))
        frames = {"n": 0, "codec": None}

        def on_pad(_w, pad):
            if pad.direction != Gst.PadDirection.SRC:
                return
            s = pad.get_current_caps().get_structure(0)
            frames["codec"] = s.get_string("encoding-name")
            dec = Gst.parse_bin_from_description(
                "rtph264depay ! h264parse ! avdec_h264 ! fakesink name=sink sync=false", True)
            pipe.add(dec)
            dec.sync_state_with_parent()
            pad.link(dec.get_static_pad("sink"))

            def count(_p, _i):
                frames["n"] += 1
                return Gst.PadProbeReturn.OK
            dec.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count)
        w.connect("pad-added", on_pad)

    location = {}

    def post_offer():
        offer = w.get_property("local-description").sdp.as_text()
        if passive:
            offer = offer.replace("a=setup:actpass", "a=setup:passive")
        req = urllib.request.Request(url, data=offer.encode(), method="POST",
                                     headers={"Content-Type": "application/sdp"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                out["status"] = r.status
                location["url"] = urllib.parse.urljoin(url, r.headers.get("Location", ""))
                answer = r.read().decode()
        except urllib.error.HTTPError as e:
            out["status"] = e.code
            out["error"] = e.read().decode()[:200]
            loop.quit()
            return
        _, sdp = GstSdp.SDPMessage.new_from_text(answer)
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        w.emit("set-remote-description", desc, None)

    def on_gathering(_w, _p):
        # No trickle: WHIP/WHEP get the whole offer once gathering is done.
        if w.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE \
                and "status" not in out:
            GLib.idle_add(lambda: post_offer() and False)
    w.connect("notify::ice-gathering-state", on_gathering)

    def on_state(_w, _p):
        st = w.get_property("connection-state").value_nick
        # Over ICE-TCP libnice may call the whole connection failed (its UDP
        # checks all fail) while media flows: keep the best state seen.
        if out.get("connection") != "connected":
            out["connection"] = st
    w.connect("notify::connection-state", on_state)

    def make_offer():
        def done(promise, _):
            promise.wait()
            # Keep the reply referenced while the offer is used: PyGObject
            # does not, and the offer is freed under us otherwise.
            reply = promise.get_reply()
            offer = reply.get_value("offer")
            if offer is None:
                out["error"] = "webrtcbin made no offer: %s" % reply.to_string()
                loop.quit()
                return
            w.emit("set-local-description", offer, Gst.Promise.new())
        w.emit("create-offer", None, Gst.Promise.new_with_change_func(done, None))


    pipe.set_state(Gst.State.PLAYING)

    def offer_when_ready():
        # Too early (before PLAYING, or before the payloader's caps reach
        # webrtcbin), create-offer answers with no offer.
        if mode == "whip" and w.get_static_pad("sink_0").get_current_caps() is None:
            return True
        make_offer()
        return False
    GLib.timeout_add(50, offer_when_ready)
    GLib.timeout_add(int(secs * 1000), loop.quit)
    threading.Timer(secs + 20, lambda: sys.exit(3)).start()
    loop.run()
    if mode == "whip":
        out["rtpSent"] = sent["n"]
    else:
        out["frames"], out["codec"] = frames["n"], frames["codec"]
    if location.get("url"):
        try:
            req = urllib.request.Request(location["url"], method="DELETE")
            out["deleteStatus"] = urllib.request.urlopen(req, timeout=5).status
        except urllib.error.HTTPError as e:
            out["deleteStatus"] = e.code
    pipe.set_state(Gst.State.NULL)
    print(json.dumps(out), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
