"""One stream's analysis, owned by one object: what is kept, what is decoded, what moved, what changed.

`StreamAnalysis` holds the stream's intake gate (limits and decode backlog), its packet ring (the source of
its clips), its decoder, its motion detector and its event tracker. The connection hands it media messages
(`receive`) on the event loop; `run` decodes them in worker threads a batch at a time, one batch of a stream
at once, and yields what each batch produced as an `Analysed` whose events open, extend and close incidents.

Most cameras watch an empty room most of the day, so a stream without motion for `idle_after_seconds` goes
idle: it decodes a keyframe now and then (`idle_refresh_seconds`) to compare with the background, and its
other packets' sizes feed a `SizeTrigger`. Either can wake it, and then it decodes again from the last
keyframe it knew to be still, out of the packet ring: analysis sees every frame since, so an incident starts
at the first moving frame, not at the wake-up. A wake-up that finds no motion within WAKE_CONFIRM_US goes
back to idle at once (and teaches the size trigger). Once an incident's motion has lasted FOLLOW_AFTER_US the
stream follows it on keyframes only, one every `idle_refresh_seconds` (sooner for a long GOP: see
`PacketRing.follow_gap`), each compared with the one followed before, until one looks still or half a
cooldown has passed: it then decodes in full again from the keyframe followed before the newest that moved,
and the tracker places the incident's end at its last motion (a GOP over half the ring's span is not
followed).

A backfill (recorded footage an agent sends after an outage, docs/protocol.md 4a) is analysed in full and
after live video: its gate never sheds, it never goes idle, its batches wait while live streams saturate the
decode threads and are not counted in that saturation, and the connection stops reading while the footage
queued ahead of analysis is at `max_decode_backlog_bytes` or would outrun the packet ring (`backlogged`).

A live camera is watched only while its customer's settings arm it (see ingest/watch.py). Disarmed, its
stream costs receipt only: packets are checked and kept in the ring (clips, stills), nothing is decoded, and
an incident open when it was disarmed ends at its last motion. Armed again, it starts like a new stream from
the newest keyframe in the ring: the frames since are analysed, with a background learnt afresh.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor

from vigint.analysis.decoder import StreamDecoder
from vigint.analysis.frames import FrameAnalysis, Outcome, Use
from vigint.analysis.intake import Intake, Limits
from vigint.analysis.load import DecodeLoad
from vigint.analysis.modes import Analysed, Mode, Wake
from vigint.analysis.motion import Tuning, rectangle_masks
from vigint.analysis.ring import PacketRing
from vigint.analysis.trigger import SizeTrigger
from vigint.config import Settings
from vigint.media import MICROSECONDS, Packet
from vigint.protocol import ProtocolViolation
from vigint.tasks import wait_for_event

WAKE_CONFIRM_US = 3 * MICROSECONDS  # stream time a wake-up has to show motion before the stream idles again
# Motion this long since an incident opened is confirmed (no passing shadow lasts it): only its end is still
# to learn, from keyframes.
FOLLOW_AFTER_US = 5 * MICROSECONDS
# What a following stream's full decode may lag the keyframe that calls for it (a batch's wait and decode).
FOLLOW_LAG_US = 2 * MICROSECONDS
# A backfill batch checks the live load again after this many packets: live streams never wait long for it.
MAX_BACKFILL_BATCH = 64
# Footage read ahead of a backfill's analysis stays this far within the packet ring, so that it still holds an
# incident's pre-roll when analysis finds its start (min_motion_seconds before it is found).
BACKFILL_LEAD_MARGIN_SECONDS = 1.0


class StreamAnalysis:
    """The analysis of one camera stream. `receive` and `end` on the event loop; `run` once, as a task."""

    def __init__(self, settings: Settings, client_id: int, camera: str, on_undecodable: Callable[[int, bool], None],
                 load: DecodeLoad | None = None, backfill: bool = False, armed: bool = True):
        """`on_undecodable(count, first)` hears of media that cannot be decoded (see `Intake`). `load` is the
        server's decode saturation, shared by its streams (their own, if not given). A `backfill` is recorded
        footage: analysed in full, after live video (see the module's docstring). A stream not `armed` waits
        for its camera's settings: it decodes nothing until `arm`, which then analyses the whole ring (nothing
        it sent meanwhile goes unseen), unless a `disarm` came first."""
        self.load = load or DecodeLoad()
        self.backfill = backfill
        buffers = settings.buffers
        tuning = settings.camera(client_id, camera)
        self._settings = settings.analysis
        # A backfill's ring is bounded by bytes only: the jump over a gap in its footage (an outage, then a
        # second one) would otherwise trim the packets its analysis has still to reach, and the clip's.
        ring_seconds = None if backfill else buffers.long_buffer_seconds
        self.packets = PacketRing(ring_seconds, buffers.max_packet_buffer_bytes)
        limits = Limits.of(settings.server)
        self.intake = Intake(limits, on_undecodable, complete=backfill)
        lead = buffers.long_buffer_seconds - settings.motion.pre_roll_seconds - settings.motion.min_motion_seconds
        self._max_lead_us = int(max(BACKFILL_LEAD_MARGIN_SECONDS, lead - BACKFILL_LEAD_MARGIN_SECONDS) * MICROSECONDS)
        self._drained = asyncio.Event()  # set after each batch: a backlogged backfill looks again
        self._until: int | None = None
        decoder = StreamDecoder(buffers.analysis_width, buffers.analysis_fps,
                                limits.max_width * limits.max_height)
        operator = Tuning(tuning.sensitivity, rectangle_masks(tuning.masks))  # until its settings are read
        self._frames = FrameAnalysis(decoder, settings.motion, operator)
        self._trigger = SizeTrigger(settings.analysis.wake_size_factor)
        self._queue: asyncio.Queue[tuple[Packet, float, Use] | None] = asyncio.Queue()
        self._ended = asyncio.Event()
        self.video_size: tuple[int, int] | None = None  # the full picture size, once a frame was decoded
        self.frames_decoded = 0
        self._unreported_wake: Wake | None = None
        self._busy = False  # a batch is being analysed
        self._replay_skip: int | None = None  # a replay's frames up to this pts were analysed already
        self._bytes_since_replay = 0  # a replay decodes no more than the stream sent since the last one
        self._max_replay_bytes = limits.max_backlog_bytes
        self._max_follow_us = int(settings.motion.cooldown_seconds * MICROSECONDS) // 2
        self._refresh_us = int(settings.analysis.idle_refresh_seconds * MICROSECONDS)
        # Waiting for its settings: arming replays the whole ring, not only from its newest keyframe.
        self._waiting = not armed
        self._begin(Mode.ACTIVE if armed else Mode.DISARMED)

    def _begin(self, mode: Mode) -> None:
        """Start watching as a new stream does (or stop, in Mode.DISARMED): nothing known of motion yet."""
        self.mode = mode
        self._last_motion: int | None = None  # pts of the newest frame with motion (or of the first frame)
        # dts of the keyframe a replay starts from: the newest known to be still while idle, while following
        # the one followed before the newest keyframe that moved
        self._resume_from: int | None = None
        self._last_sample: int | None = None  # pts of the newest idle keyframe check
        self._followed: list[int] = []  # dts of the keyframes followed (the newest few), oldest first
        self._woke: Wake | None = None  # what woke the stream last, until it idles again
        self._woke_at = 0  # the newest dts then
        self._moved_since_wake = False
        self._analysed_until: int | None = None  # pts of the newest frame shown to the event tracker
        self._trigger.reset([])

    # On the event loop

    def receive(self, message: bytes) -> Packet | None:
        """Check a media message, keep it in the ring and queue it for decoding as the gate and the mode say;
        return its packet (None: not H.264, counted as such), so that the message is parsed only once.

        Raises:
            ProtocolViolation: 4415 when the message breaks a limit or the stream cannot be decoded.
        """
        packet = self.intake.accept(message)
        if packet is None:
            return None
        self.packets.append(packet)
        self._bytes_since_replay += packet.cost
        if self.mode is Mode.DISARMED:
            return packet
        if self.mode is Mode.FOLLOWING:
            # The tracker must see frames again well within the cooldown, and from a keyframe the ring still holds
            # (GOPs of changing length, a byte cap or a late batch can outrun `follow_gap`)
            if (packet.dts - (self._analysed_until or 0) >= self._max_follow_us
                    or not self.packets.holds_after_oldest(self._resume_from)):
                self._replay()
            # A keyframe (a 720p one costs ten other frames) every idle_refresh_seconds, or as the ring asks.
            elif packet.keyframe and packet.dts - self._followed[-1] >= self.packets.follow_gap(self._refresh_us,
                                                                                                FOLLOW_LAG_US):
                self._followed = [*self._followed[-3:], packet.dts]
                self._queue.put_nowait((packet, time.monotonic(), Use.FOLLOW))
            return packet
        if self.mode is Mode.ACTIVE:
            # A backfill's gate never sheds, overloaded or not.
            if self.intake.admit(packet, self.load.overloaded):
                self._queue.put_nowait((packet, time.monotonic(), Use.LIVE))
            if self._woke is Wake.SIZE and not self._moved_since_wake:
                self._trigger.update(packet.dts, len(packet.data), packet.keyframe)  # the whole disturbance
        elif self._trigger.update(packet.dts, len(packet.data), packet.keyframe):
            self._wake(Wake.SIZE)
        elif packet.keyframe and (self._last_sample is None or packet.pts - self._last_sample >= self._refresh_us):
            self._last_sample = packet.pts
            self._queue.put_nowait((packet, time.monotonic(), Use.SAMPLE))
        return packet

    @property
    def backlogged(self) -> bool:
        """Whether a backfill has as much footage queued ahead of its analysis as it may: its connection is
        not read until `drained` (a live stream sheds instead, see `Intake.admit`)."""
        oldest = self.intake.oldest_queued_dts
        newest = self.packets.newest_dts()
        return self.intake.queued_bytes >= self.intake.max_backlog_bytes or (
            oldest is not None and newest is not None and newest - oldest >= self._max_lead_us)

    async def drained(self) -> None:
        """Wait until the stream is no longer `backlogged` (or has ended)."""
        while self.backlogged and not self._ended.is_set():
            self._drained.clear()
            await self._drained.wait()

    @property
    def until(self) -> int | None:
        """The decode time (µs) of the newest packet analysed in full so far, if any."""
        return self._until

    @property
    def ended(self) -> bool:
        """Whether `end` was called: no more media comes."""
        return self._ended.is_set()

    def end(self) -> None:
        """No more media: `run` analyses what is queued (and, if the stream was idle, what it sent since its
        last still keyframe), flushes the decoder and returns. Later calls do nothing."""
        if self._ended.is_set():
            return
        if self.mode in (Mode.IDLE, Mode.FOLLOWING):  # not if disarmed: what it sent is not to be watched
            self._replay()
        self._queue.put_nowait(None)
        self._ended.set()
        self._drained.set()

    @property
    def caught_up(self) -> bool:
        """Whether every packet queued so far has been analysed."""
        return self._queue.empty() and not self._busy

    @property
    def armed(self) -> bool:
        """Whether the stream is watched: its frames decoded and analysed (see `arm`, `disarm`)."""
        return self.mode is not Mode.DISARMED

    @property
    def tuning(self) -> Tuning:
        """The motion detector's sensitivity and masks."""
        return self._frames.tuning

    def retune(self, tuning: Tuning) -> None:
        """Use a new sensitivity and masks from the next frame analysed on."""
        self._frames.retune(tuning)

    def follow_recorded(self, armed_at: Callable[[float], bool]) -> None:
        """Watch a backfill's footage only where `armed_at(instant)` says its camera was armed when it was
        recorded: motion elsewhere opens no incident (an open one ends as motion stopped)."""
        self._frames.armed_at = armed_at

    def arm(self) -> None:
        """Watch the stream again, as a new one: analysis restarts at the newest keyframe in the ring (at the
        oldest if it never was armed), so no frame since goes unseen, and is active until a quiet while makes
        it idle. Does nothing if armed or ended."""
        if self.armed or self.ended:
            return
        self._begin(Mode.ACTIVE)
        first = self._waiting
        self._waiting = False
        if first and not len(self.packets):
            return  # nothing came yet: the gate waits for the first keyframe as for any new stream
        if not first:
            self._resume_from = self.packets.last_keyframe_dts()
        self._replay()

    def disarm(self) -> None:
        """Stop watching the stream: nothing it sends is decoded from now on (what is queued still is, and
        may still end its open incident), and its open incident ends at its last motion. Does nothing if
        disarmed or ended."""
        self._waiting = False  # disarmed until armed, which starts from then on
        if not self.armed or self.ended:
            return
        if self.mode is Mode.FOLLOWING:
            self._replay()  # its open incident ends at its last motion, which only a full decode places
        self._begin(Mode.DISARMED)
        self._drop_samples()
        newest = self.packets.newest()
        if newest is not None:  # else nothing was ever analysed: no incident, nothing learnt
            self._queue.put_nowait((newest, time.monotonic(), Use.DISARM))

    def _wake(self, cause: Wake) -> None:
        """Go active, and decode again from the last keyframe known to be still: nothing since goes unseen."""
        self._woke = cause
        self._woke_at = self.packets.newest_dts() or 0
        self._moved_since_wake = False
        self._unreported_wake = cause
        self._replay()

    def _replay(self) -> None:
        """Decode in full again: queue the ring's packets from `_resume_from` on, instead of keyframe checks.

        A replay holds no more than the stream sent since the last one plus the GOP it starts from (else the
        frames from there to the last analysed go missing), nor than its decode backlog may: a stream that
        wakes and sleeps in a loop gets each byte decoded three times at most."""
        self.mode = Mode.ACTIVE
        self._drop_samples()
        allowed = self._bytes_since_replay + self.packets.gop_cost(self._resume_from)
        replay = self.packets.since(self._resume_from, min(allowed, self._max_replay_bytes))
        self._bytes_since_replay = 0
        self._replay_skip = self._analysed_until
        for index, packet in enumerate(replay):
            self._queue.put_nowait((packet, time.monotonic(), Use.REPLAY if index else Use.RESTART))
        if replay:
            self.intake.replayed()
        else:
            self.intake.restarted()

    def _drop_samples(self) -> None:
        """Take the keyframe checks still queued off the queue: what they would tell is moot."""
        queued = []
        while not self._queue.empty():
            queued.append(self._queue.get_nowait())
        for item in queued:
            if item is None or item[2] not in (Use.SAMPLE, Use.FOLLOW):
                self._queue.put_nowait(item)

    def _go_idle(self) -> None:
        newest = self.packets.newest_dts() or 0
        if self._woke is Wake.SIZE and not self._moved_since_wake:
            self._trigger.false_wake(newest)  # woken by a disturbance that was no motion
        self.mode = Mode.IDLE
        # Every keyframe, moving or not, tells the trigger the GOP's length (see trigger.py, settling).
        still = [packet for packet in self.packets.packets()
                 if packet.keyframe or packet.dts > (self._last_motion or 0)]
        self._trigger.reset([(packet.dts, len(packet.data), packet.keyframe) for packet in still])
        self._resume_from = self.packets.last_keyframe_dts()
        self._last_sample = None
        self._woke = None

    def _settle(self, outcome: Outcome) -> None:
        """After a batch: wake on motion seen while idle; go idle after a quiet while (keyframes mode
        only)."""
        if outcome.tracked_pts is not None:
            self._analysed_until = max(outcome.tracked_pts, self._analysed_until or outcome.tracked_pts)
        if self.mode is Mode.DISARMED:
            return  # what the batch saw was from before: a camera armed again starts afresh
        if outcome.motion_pts is not None:
            self._last_motion = outcome.motion_pts
            self._moved_since_wake = True
        if self._last_motion is None:
            self._last_motion = outcome.first_pts  # quiet is counted from the stream's first frame
        if self.mode is Mode.IDLE:
            for dts, moved in outcome.samples:
                if moved:
                    self._wake(Wake.KEYFRAME)
                    return
                self._resume_from = dts
            if outcome.motion_pts is not None:
                self._wake(Wake.FRAMES)
            return
        if self.mode is Mode.FOLLOWING:  # a keyframe that moved since the one followed before it: decode from that one
            for dts, moved in outcome.samples:
                if not moved:
                    self._replay()
                    return
                self._resume_from = max((before for before in self._followed if before < dts), default=None)
            return
        if self._settings.idle_mode != "keyframes" or outcome.last_pts is None or self.backfill:
            return
        if (outcome.opened_at is not None and outcome.motion_pts == outcome.last_pts
                and outcome.last_pts - outcome.opened_at >= FOLLOW_AFTER_US
                and self.packets.keyframes_within(self._max_follow_us)):  # its GOPs kept and seen in time
            self.mode = Mode.FOLLOWING  # the motion is confirmed: only its end is still to learn
            self._followed = [self.packets.last_keyframe_dts() or 0]
            self._resume_from = self._followed[0]
            return
        if self._woke is not None and not self._moved_since_wake:
            quiet = (self.packets.newest_dts() or 0) - self._woke_at >= WAKE_CONFIRM_US
        else:
            quiet = outcome.last_pts - self._last_motion >= self._settings.idle_after_seconds * MICROSECONDS
        if quiet:
            self._go_idle()

    def _absorb(self, outcome: Outcome, uses: list[Use], waited: list[float],
                until: int | None = None) -> Analysed:
        if outcome.size:
            self.video_size = outcome.size
        self.frames_decoded += outcome.decoded
        self._settle(outcome)
        woke = self._unreported_wake
        self._unreported_wake = None
        refusal = None
        try:
            self.intake.decoded(outcome.decoded, outcome.errors)
        except ProtocolViolation as violation:
            refusal = violation
        if until is not None:
            self._until = max(until, self._until or until)
        return Analysed(outcome.decoded, outcome.events, waited, refusal, Use.mode_of(uses),
                        outcome.cpu_seconds, woke, self._until)

    async def run(self, pool: Executor, batch_seconds: float) -> AsyncIterator[Analysed]:
        """Analyse queued packets in `pool` until `end`, yielding each batch's outcome.

        A few packets go per hand-off to a worker thread (those that arrive within `batch_seconds`): each
        hand-off costs about as much as the Python side of a packet, and analysis needs frames no sooner.
        """
        loop = asyncio.get_running_loop()
        ending = False
        while not (ending and self._queue.empty()):  # a wake-up at the end queues a replay behind the end
            batch = [await self._queue.get()]
            self._busy = True
            if batch[0] is not None:
                # The stream's end need not wait for the batch.
                await wait_for_event(self._ended, batch_seconds)
            while not self._queue.empty() and not (self.backfill and len(batch) >= MAX_BACKFILL_BATCH):
                batch.append(self._queue.get_nowait())
            ending = ending or None in batch
            items = [item for item in batch if item is not None]
            if items:
                started = await self.load.turn(self.backfill)
                try:
                    outcome = await loop.run_in_executor(pool, self._frames.analyse,
                                                         [(p, use) for p, _, use in items],
                                                         self._replay_skip, started)
                finally:
                    started()
                done = time.monotonic()
                # Dequeued once analysed: the backlog the gate measures includes the batch in flight.
                live = [packet for packet, _, use in items if use is Use.LIVE]
                self.intake.dequeued(live)
                self._drained.set()
                analysed = self._absorb(outcome, [use for _, _, use in items],
                                        [done - received for _, received, use in items if use is Use.LIVE],
                                        max((packet.dts for packet in live), default=None))
                self._busy = False
                yield analysed
        yield self._absorb(await loop.run_in_executor(pool, self._frames.flush), [], [])
