"""Settings of the stream path: what `vigint serve` allows each connection, keeps and analyses of each stream.

Sections of `vigint.config.Settings` (its [server], [buffers] and [analysis]), declared apart from the others
because they are the limits and budgets of ingest and analysis, each with its reason and bounds.
"""

from dataclasses import dataclass
from pathlib import Path

from vigint.networks import parse_networks
from vigint.setting import setting


@dataclass(frozen=True)
class ServerSettings:
    """How `vigint serve` listens and treats connections."""

    host: str = setting(
        "127.0.0.1", "address to listen on; 0.0.0.0 accepts agents from other hosts (the safe default "
        "serves this machine only)")
    port: int = setting(5002, "TCP port for WebSocket streams and HTTP (/healthz, /metrics)", minimum=0,
                        maximum=65535)
    tls_cert: Path | None = setting(
        None, "PEM certificate chain; with tls_key, serves wss:// (`vigint cert` makes a self-signed pair)")
    tls_key: Path | None = setting(None, "PEM private key for tls_cert")
    auth_timeout_seconds: float = setting(
        5.0, "a connection must say hello within this time: agents do at once, so a silent connection is "
        "only holding a socket", minimum=0.1)
    max_streams_per_client: int = setting(
        16, "cameras one client may stream at once: a shop has a few, 16 leaves room while stopping a "
        "leaked key from eating the server", minimum=1)
    max_auth_failures: int = setting(
        10, "refused keys and malformed hellos from one address within auth_failure_window_seconds before "
        "its wrong keys get 4429 (a valid key is still welcomed): enough for a customer's typos, too few to "
        "guess keys", minimum=1)
    auth_failure_window_seconds: float = setting(
        60.0, "the window over which failed hellos are counted, and so how long a blocked address waits",
        minimum=1)
    revocation_check_seconds: float = setting(
        0.25, "how often the database is polled for revoked or expired keys; revocation must reach open "
        "streams within 1 s", minimum=0.05, maximum=1)
    lease_seconds: float = setting(
        15.0, "a node renews its streams' camera names every third of this; a dead node's names are free "
        "again after it, so its cameras can reconnect to another node", minimum=1)
    usage_flush_seconds: float = setting(
        5.0, "how often usage counters and last-seen times are written: batched, never a write per frame",
        minimum=0.1)
    decode_threads: int = setting(0, "worker threads decoding video; 0 means one per CPU core", minimum=0)
    max_bad_packets: int = setting(
        150, "consecutive undecodable media messages before a stream is closed with 4415 (about 10 s of a "
        "15 fps camera)", minimum=1)
    decode_batch_seconds: float = setting(
        0.2, "packets are handed to the decoder threads in batches this long: fewer hand-offs, less CPU; "
        "analysis needs no faster", minimum=0, maximum=1)
    max_decode_backlog_seconds: float = setting(
        4.0, "video waiting for analysis (from its oldest packet to its newest) before a stream skips ahead "
        "to the next keyframe when the decode threads are saturated, so an overloaded server stays "
        "real-time; as far behind as an agent queues on a slow link", minimum=0.5)
    max_decode_catchup_seconds: float = setting(
        30.0, "the same, before a stream skips ahead even when the server has threads to spare: a burst "
        "after a stall (an agent queues 4 s, a stalled link more) is analysed in full, yet no stream's "
        "alerts come minutes late", minimum=1)
    max_decode_backlog_bytes: int = setting(
        8388608, "encoded video waiting for the decoder (8 MiB) before analysis skips ahead: bounds memory "
        "whatever the message sizes; the packet buffer holds the same packets", minimum=1048576)
    shutdown_timeout_seconds: float = setting(
        5.0, "how long a graceful shutdown waits for streams and incidents in progress before cancelling "
        "them", minimum=0.1)
    drain_seconds: float = setting(
        3.0, "on SIGTERM or Ctrl-C, how long /healthz answers 503 and new streams are refused with 1013 "
        "before open ones are closed with 1001: a load balancer checking every second sees the node down "
        "within two checks, so agents reconnect to other nodes; the wait ends early once no stream is open",
        minimum=0, maximum=300)
    max_pending_hellos: int = setting(
        256, "connections not yet authenticated, server-wide; past it the oldest is closed: agents say "
        "hello at once, so only idle sockets are lost, and the file descriptors left serve authenticated "
        "streams", minimum=1)
    max_pending_hellos_per_address: int = setting(
        32, "connections not yet authenticated from one address; past it that address's oldest is closed: a "
        "shop's cameras reconnecting together fit, one host cannot hold the whole allowance, and an idle "
        "host behind the shop's NAT cannot lock its agent out", minimum=1)
    trusted_proxies: str = setting(
        "", "load balancers whose PROXY protocol v2 header names the agent behind each connection "
        "(addresses or networks, e.g. 10.0.0.2, 10.0.1.0/24): per-address limits then count agents, not the "
        "balancer. Connections from these must send the header (HAProxy: send-proxy-v2); nobody else's is "
        "believed. Empty: none", check=parse_networks)
    max_picture_width: int = setting(
        3840, "widest picture a stream's SPS may declare (4K UHD); a larger one is closed with 4415 before "
        "it reaches the decoder. A 4K stream's decoder holds about 260 MiB (720p: 12 MiB): 1920 and 1080 "
        "suit a fleet without 4K cameras", minimum=16, maximum=16384)
    max_picture_height: int = setting(2160, "tallest picture a stream's SPS may declare (4K UHD)", minimum=16,
                                      maximum=16384)
    max_macroblocks: int = setting(
        36864, "16x16 macroblocks per picture (4096x2304, H.264 level 5.1): bounds decoder memory whatever "
        "the picture's shape", minimum=1)
    max_nal_units: int = setting(
        256, "NAL units in one access unit: one slice per macroblock row of a 4K picture is 135, plus "
        "parameter sets and SEI; a million empty ones is an attack", minimum=8)


@dataclass(frozen=True)
class BufferSettings:
    """What each stream keeps in memory."""

    long_buffer_seconds: float = setting(
        10.0, "encoded video kept per stream for clips: pre-roll plus margin, about 2.5 MB at 720p 2 Mbps",
        minimum=1)
    analysis_width: int = setting(
        320, "longer side frames are scaled to for analysis (the width of a landscape camera): enough to "
        "see a person, small enough to cost 0.1-0.6 ms a frame", minimum=32, maximum=3840)
    analysis_fps: float = setting(
        5.0, "frames per second analysed: motion is visible at 5 fps and it costs a third of 15", minimum=0.5,
        maximum=60)
    max_packet_buffer_bytes: int = setting(
        8388608, "memory cap on one stream's encoded video (8 MiB): 10 s up to about 6 Mbps; a higher "
        "bitrate keeps a shorter span. With the 720p decoder (12 MB) it keeps a stream within 24 MiB "
        "whatever it sends", minimum=1048576)


@dataclass(frozen=True)
class AnalysisSettings:
    """How much of a still stream is decoded: most cameras watch an empty room most of the day."""

    idle_mode: str = setting(
        "keyframes", "keyframes: a stream without motion for idle_after_seconds decodes only a keyframe now "
        "and then and watches the sizes of the other frames, waking to a full decode from the last still "
        "keyframe when either shows motion; full: decode every frame at all times",
        choices=("keyframes", "full"))
    idle_after_seconds: float = setting(
        10.0, "seconds of stream time without motion before a stream goes idle", minimum=1)
    idle_refresh_seconds: float = setting(
        4.0, "while idle, a keyframe is decoded and compared with the background at most this often (every "
        "keyframe when the GOP is longer): the longest a motion that leaves frame sizes alone goes unseen",
        minimum=0)
    wake_size_factor: float = setting(
        3.0, "while idle, the bytes of the last second of non-key frames this many times their median over "
        "the last 30 s wake the stream, or twice this many times their spread above it; a person walking in "
        "multiplies them by 5-10 on a VBR camera, by 1.2-2 on a grainy night scene",
        minimum=1.5)


