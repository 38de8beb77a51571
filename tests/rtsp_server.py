"""A real RTSP server for the agent's tests: GStreamer's gst-rtsp-server, from Debian's packages.

Run with the system Python that has PyGObject: `/usr/bin/python3 rtsp_server.py FILE.mp4`. It serves the
H.264 of FILE at rtsp://127.0.0.1:PORT/camera and prints PORT on the first line.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service("0")
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(f"( filesrc location={sys.argv[1]} ! qtdemux ! h264parse ! "
                   "rtph264pay name=pay0 pt=96 config-interval=-1 )")
factory.set_shared(True)
server.get_mount_points().add_factory("/camera", factory)
server.attach(None)
print(server.get_bound_port(), flush=True)
GLib.MainLoop().run()
