#!/usr/bin/python3
"""A loopback RTSP server for hood-watch's tests, built on Debian's gst-rtsp-server library
through PyGObject (packages python3-gi, gir1.2-gst-rtsp-server-1.0; the library ships no server
program). It serves one MJPEG-in-AVI clip at rtsp://127.0.0.1:PORT/clip as raw RGB over RTP, in real
time, from its start for every client.

    rtsp_server.py CLIP.avi PORT

Prints "ready" once it listens, then serves until it is killed.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    clip, port = sys.argv[1], sys.argv[2]
    if '"' in clip:
        print(f"{clip}: a path with a double quote cannot go into a launch line", file=sys.stderr)
        return 2
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    # Raw RGB over RTP (RFC 4175): lossless, so the frames hood sees are the clip's.
    factory.set_launch(
        f'( filesrc location="{clip}" ! avidemux ! jpegdec ! videoconvert '
        "! video/x-raw,format=RGB ! rtpvrawpay name=pay0 pt=96 )"
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory("/clip", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
