"""What tests share besides fixtures (those stay in conftest.py): the real CLI in a subprocess, a client
in the store, waiting for a condition, a mailbox, hellos and refusals, MP4 boxes, the real agent."""

import asyncio
import email
import email.policy
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import vigint
from vigint import keys, protocol
from vigint.alerts import emails

# Tests whose assertions hold a latency (a ping, a hello, a second of billing) or that load a core for
# seconds: `--dist loadgroup` (the default) runs them one after another on one worker, never two at once.
REALTIME = pytest.mark.xdist_group("realtime")

# The seller's details an invoice needs ([billing]), as an operator sets them.
SELLER = {"VIGINT_BILLING_SELLER_NAME": "Vigint Ops SARL",
          "VIGINT_BILLING_SELLER_ADDRESS": "1 rue de la Paix, Paris",
          "VIGINT_BILLING_PAYMENT_DETAILS": "IBAN FR76 3000 6000 0112 3456 7890 189, BIC AGRIFRPP"}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def run_vigint(*args: str, cwd: Path, env: dict | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the real `vigint` executable of this environment in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "vigint", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


async def add_client(store, email: str = "ops@acme.test", name: str = "Acme") -> tuple[int, int, str]:
    """Create a client through the store; return (client id, key id, API key)."""
    api_key = keys.generate()
    client, key = await store.create_client(name, email, keys.hash_key(api_key), keys.display_prefix(api_key))
    return client.id, key.id, api_key


async def eventually(condition: Callable, accept: Callable = bool, timeout: float = 10.0,
                     interval: float = 0.02):
    """Call `condition()` (awaited if it returns an awaitable, e.g. a store query) until `accept` takes its
    value; return that value, or fail the test with the last one after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition still false after {timeout} s: {value!r}")
        await asyncio.sleep(interval)


class Mailbox:
    """aiosmtpd handler keeping every message received."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@contextmanager
def serving(box: "Mailbox", port: int | None = None) -> Iterator["Mailbox"]:
    """Run a real SMTP server on 127.0.0.1 (`port`, or a free one, then in `box.port`) handing its messages to `box`."""
    controller = Controller(box, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    box.port = controller.port
    try:
        yield box
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def link_in(message) -> str:
    """Return the clip link in an alert email."""
    body = emails.text_of(message)
    return next(line for line in body.splitlines() if "/clips/" in line).strip()


def url(server) -> str:
    """Return the stream URL of a server started by the `start` fixture."""
    return f"{'wss' if server.tls else 'ws'}://127.0.0.1:{server.port}{protocol.PATH}"


def hello(key: str = "vig_secret", camera: str = "front-door", **fields) -> str:
    """Return a protocol-v1 hello."""
    document = {"type": "hello", "version": 1, "key": key, "camera": camera, "codec": "h264"}
    return json.dumps({**document, **fields})


async def refused(server, first: str | bytes) -> tuple[int, str]:
    """Send one first message (a hello, or anything); return the close code and reason the server answered
    with."""
    async with connect(url(server)) as connection:
        with pytest.raises(ConnectionClosed) as closed:
            await connection.send(first)  # a blocked address is closed before it can say anything
            await connection.recv()
    return closed.value.rcvd.code, closed.value.rcvd.reason


def top_level_boxes(mp4: bytes | Path) -> list[str]:
    """Return the types of an MP4's top-level boxes (of its bytes, or of a file), in file order."""
    if isinstance(mp4, Path):
        mp4 = mp4.read_bytes()
    types, position = [], 0
    while position + 8 <= len(mp4):
        size = int.from_bytes(mp4[position:position + 4], "big")
        if size == 1:  # a 64-bit size follows the type
            size = int.from_bytes(mp4[position + 8:position + 16], "big")
        types.append(mp4[position + 4:position + 8].decode())
        position += size or len(mp4)
    return types


async def start_agent(cwd: Path, *args: str) -> asyncio.subprocess.Process:
    """Start `vigint agent ARGS` in `cwd`, with no VIGINT_ variable inherited from the test's environment.

    It runs the vigint these tests import: a relative PYTHONPATH (`PYTHONPATH=src`) would not hold in `cwd`,
    and the agent would be whatever vigint the interpreter has installed.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("VIGINT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(vigint.__file__).parent.parent), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "vigint", "agent", *args]
    return await asyncio.create_subprocess_exec(*command, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)


async def stop(agent: asyncio.subprocess.Process) -> tuple[int, str]:
    """Stop an agent as Ctrl-C does (unless it has exited); return its exit code and log."""
    if agent.returncode is None:
        agent.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(agent.communicate(), 30)
    return agent.returncode, err.decode()
