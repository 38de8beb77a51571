"""The fleet at a glance (`vigint status`): which nodes run, who streams, cameras down, decode load.
Read from the nodes' snapshots in the store, so it works from any host that reaches the database."""

import time

from rich.console import Console

from vigint.cli import render
from vigint.cli.commands import Commands, live_streams, open_store, running
from vigint.config import Settings
from vigint.media import SECONDS_PER_DAY
from vigint.store import CameraRecord, Flag, Node
from vigint.words import plural

commands = Commands()


@commands.command("status", "the fleet: who streams, cameras down, decode load", listing=True)
async def status(args, settings: Settings, console: Console) -> int:
    now = time.time()
    async with await open_store(settings) as store:
        nodes = await store.nodes()
        streams = await live_streams(store, settings, now) or []
        cameras = await store.cameras()
        flags = await store.flags(since=now - SECONDS_PER_DAY)
    down = [c for c in cameras if c.down_since is not None]
    up = running(nodes, settings, now)
    document = _document(nodes, up, streams, down, flags)
    if args.json:
        render.print_json(document)
        return 0
    console.print(f"Server {_state(document, nodes, up, streams)}; {plural(len(down), 'camera')} down; "
                  f"{plural(len(flags), 'flag')} in the last day.", highlight=False)
    if len(nodes) > 1 or any(node not in up for node in nodes):
        rows = [(n["id"], "running" if n["running"] else "stopped or silent", str(n["streams"]),
                 str(n["frames_per_second"]), str(n["decode_lag_p99_seconds"]), render.local(node.seen_at))
                for n, node in zip(document["nodes"], nodes)]
        columns = ("Node", "State", "Streams", "Frames/s", "Lag p99 (s)", "Last seen")
        console.print(render.table("Nodes", columns, rows))
    rows = [(str(s["client_id"]), s["camera"], f"{s['key_prefix']}…", s["address"],
             render.local(s["connected_at"]), s.get("mode", "active"), s["node"]) for s in streams]
    columns = ("Client", "Camera", "Key", "Address", "Since", "Mode", "Node")
    optional = ("Key", "Address", "Node", "Mode")
    console.print(render.fitted(console, "Streams", columns, rows, optional=optional))
    if down:
        rows = [(str(c.client_id), c.camera, render.local(c.down_since)) for c in down]
        console.print(render.table("Cameras down", ("Client", "Camera", "Down since"), rows))
    return 0


def _document(nodes: list[Node], up: list[Node], streams: list[dict], down: list[CameraRecord],
              flags: list[Flag]) -> dict:
    """The fleet as `vigint status --json` prints it."""
    return {"server_running": bool(up),
            "last_snapshot_at": render.iso(max(node.seen_at for node in nodes)) if nodes else None,
            "frames_per_second": round(sum(node.document["frames_per_second"] for node in up), 1),
            "decode_lag_p99_seconds": max((node.document["decode_lag_p99_seconds"] for node in up),
                                          default=None),
            "nodes": [{"id": node.id, "running": node in up, "started_at": render.iso(node.started_at),
                       "seen_at": render.iso(node.seen_at), "streams": len(node.document["streams"]),
                       "frames_per_second": node.document["frames_per_second"],
                       "decode_lag_p99_seconds": node.document["decode_lag_p99_seconds"]} for node in nodes],
            "streams": [{**s, "connected_at": render.iso(s["connected_at"])} for s in streams],
            "clients_streaming": sorted({s["client_id"] for s in streams}),
            "cameras_down": [{"client_id": c.client_id, "camera": c.camera, "since": render.iso(c.down_since)}
                             for c in down],
            "flags_last_day": len(flags)}


def _state(document: dict, nodes: list[Node], up: list[Node], streams: list[dict]) -> str:
    """The server's state in words: where it runs and what it decodes, or when it was last seen."""
    if not up:
        last = render.local(max(n.seen_at for n in nodes)) if nodes else "never"
        return f"not running (last snapshot {last})"
    backfills = sum(s.get("mode") == "backfill" for s in streams)
    counted = plural(len(streams) - backfills, "stream")
    if backfills:
        counted += f" and {plural(backfills, 'backfill')}"
    clients = plural(len(document["clients_streaming"]), "client")
    return (f"running on {plural(len(up), 'node')}: {counted} from {clients}, "
            f"{document['frames_per_second']} frames/s decoded, decode lag p99 ≤ "
            f"{document['decode_lag_p99_seconds']} s")
