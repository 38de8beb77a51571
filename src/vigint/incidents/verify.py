"""The AI check of a motion incident, under the server's caps: a few at once, a few per client an hour."""

import asyncio
import logging
import time
from concurrent.futures import Executor

from vigint.billing.meter import UsageMeter
from vigint.config import AiSettings
from vigint.incidents import ai
from vigint.limiter import RateLimiter
from vigint.media import Packet
from vigint.metrics import Metrics
from vigint.store import Verdict

log = logging.getLogger(__name__)


class Verifier:
    """Asks the configured AI provider whether motion is an incident (JPEG encoding and the call in
    `pool`)."""

    def __init__(self, settings: AiSettings, usage: UsageMeter, metrics: Metrics, pool: Executor):
        self._settings = settings
        self._usage = usage
        self._metrics = metrics
        self._pool = pool
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._calls = RateLimiter(settings.max_calls_per_client_per_hour, 3600)

    @property
    def enabled(self) -> bool:
        return self._settings.provider != "none"

    async def check(self, client_id: int, key_id: int, camera: str,
                    packets: list[Packet]) -> tuple[bool, dict]:
        """Return whether to alert, and the incident fields the verdict sets (or says it could not)."""
        settings = self._settings
        now = time.time()
        fallback = settings.when_unreachable == "motion"
        if self._calls.retry_after(str(client_id), now) > 0:
            self._metrics.ai_calls["rate_limited"] += 1
            skipped = "AI check skipped: hourly limit reached"
            return fallback, {"verdict": Verdict.UNVERIFIED, "description": skipped}
        self._calls.record(str(client_id), now)
        loop = asyncio.get_running_loop()
        async with self._slots:
            try:
                jpegs = await loop.run_in_executor(self._pool, ai.jpeg_frames, packets, settings.frames)
                verdict = await loop.run_in_executor(self._pool, ai.ask, settings, jpegs)
            except (ai.Unreachable, ai.Malformed) as error:
                outcome = "unreachable" if isinstance(error, ai.Unreachable) else "malformed"
                self._metrics.ai_calls[outcome] += 1
                log.warning("AI check for client %d camera %r: %s", client_id, camera, error)
                return fallback, {"verdict": Verdict.UNVERIFIED}
        self._metrics.ai_calls["answered"] += 1
        self._usage.add_ai_call(key_id, verdict.tokens, time.time())
        fields = {"verdict": Verdict.CONFIRMED if verdict.incident else Verdict.REJECTED,
                  "type": verdict.type, "description": verdict.description, "threat": verdict.threat}
        return verdict.incident, fields
