"""Optional AI verification of a motion event: a few JPEG frames and a prompt to a vision model.

Two request shapes: OpenAI-compatible chat completions (images as data URLs) and Gemini's
generateContent (inline data). The answer must be a JSON verdict; anything else is `Malformed`. Calls
block, so the server runs them in worker threads, under a concurrency cap and a per-client rate cap.
"""

import base64
import json
import math
import unicodedata
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import quote

from vigint.config import AiSettings
from vigint.errors import VigintError
from vigint.incidents import stills
from vigint.media import Packet

# What a verdict may call an incident. Anything else a model says becomes "other": the type reaches email
# subjects, webhooks and the page, and names such as "motion" or "camera_down" mean something else there.
TYPES = ("intrusion", "theft", "person", "vehicle", "animal", "other")
MAX_DESCRIPTION = 300  # characters: one short sentence, as asked; a longer one is cut
MAX_THREAT = 2
MAX_TOKENS = 10_000_000  # per call: far above any real one, so a reply cannot bill (or credit) absurd counts
# a verdict is a few hundred bytes: a reply this large is not one, and is not read whole
MAX_REPLY_BYTES = 2 << 20
# Characters that break a line or hide text (controls, separators, bidi overrides, lone surrogates,
# unassigned): a model's words are shown on one line in subjects, lists and logs.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

_TYPE_CHOICES = ", ".join(json.dumps(kind) for kind in TYPES[:-1]) + f" or {json.dumps(TYPES[-1])}"
PROMPT = ("You check security-camera alerts for a small business. The images are consecutive frames "
          "where motion was detected. Answer only with JSON: {\"incident\": true or false, \"type\": "
          + _TYPE_CHOICES + ", \"description\": one short sentence, \"threat_level\": 0 (harmless), "
          "1 (worth a look) or 2 (act now)}. Say incident false for lighting changes, weather, pets, or "
          "nothing visible.")


class Unreachable(VigintError):
    """The endpoint did not answer in time, refused, or failed."""


class Malformed(VigintError):
    """The endpoint answered, but not with a usable verdict."""


@dataclass(frozen=True)
class Answer:
    """What the model concluded."""

    incident: bool
    type: str
    description: str
    threat: int
    tokens: int


def jpeg_frames(packets: list[Packet], count: int) -> list[bytes]:
    """Decode `packets` and return `count` JPEGs spread over them (see `stills.jpegs`)."""
    frames = list(stills.decoded(packets))
    step = max(1, len(frames) // count)
    return stills.jpegs(frames[::step][:count])


class OpenAiChat:
    """Any OpenAI-compatible chat-completions endpoint: images as data URLs, the verdict as a JSON object."""

    def request(self, settings: AiSettings, images: list[str]) -> tuple[str, dict, dict]:
        """Return the URL, JSON body and headers asking for a verdict on base64 JPEG `images`."""
        pictures = [{"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{image}"}}
                    for image in images]
        content = [{"type": "text", "text": PROMPT}, *pictures]
        body = {"model": settings.model, "messages": [{"role": "user", "content": content}],
                "response_format": {"type": "json_object"}}
        headers = {"Authorization": f"Bearer {settings.api_key}"}
        return f"{settings.url.rstrip('/')}/chat/completions", body, headers

    def answer(self, document: dict) -> tuple[object, object]:
        """Return the model's text and the tokens the call used, as the reply gives them (checked by
        `parse_reply`). Raises KeyError, IndexError, TypeError or AttributeError."""
        return document["choices"][0]["message"]["content"], document.get("usage", {}).get("total_tokens", 0)


class GeminiGenerate:
    """Gemini's generateContent: images as inline data, JSON asked for by MIME type."""

    def request(self, settings: AiSettings, images: list[str]) -> tuple[str, dict, dict]:
        """Return the URL, JSON body and headers asking for a verdict on base64 JPEG `images`."""
        pictures = [{"inline_data": {"mime_type": "image/jpeg", "data": i}} for i in images]
        body = {"contents": [{"parts": [{"text": PROMPT}, *pictures]}],
                "generationConfig": {"response_mime_type": "application/json"}}
        url = f"{settings.url.rstrip('/')}/v1beta/models/{quote(settings.model)}:generateContent"
        return url, body, {"x-goog-api-key": settings.api_key}

    def answer(self, document: dict) -> tuple[object, object]:
        """Return the model's text and the tokens the call used, as the reply gives them (checked by
        `parse_reply`). Raises KeyError, IndexError, TypeError or AttributeError."""
        text = document["candidates"][0]["content"]["parts"][0]["text"]
        return text, document.get("usageMetadata", {}).get("totalTokenCount", 0)


# the names [ai] provider takes, "none" aside
PROVIDERS = {"openai": OpenAiChat(), "gemini": GeminiGenerate()}


def build_request(settings: AiSettings, jpegs: list[bytes]) -> urllib.request.Request:
    """Return the HTTP request asking the configured provider for a verdict on `jpegs`."""
    images = [base64.b64encode(jpeg).decode() for jpeg in jpegs]
    url, body, headers = PROVIDERS[settings.provider].request(settings, images)
    return urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                  headers={**headers, "Content-Type": "application/json"})


def _one_line(text: str, limit: int) -> str:
    """Return a model's `text` as one line of at most `limit` characters: every run of whitespace and of
    characters that break or hide text becomes one space."""
    shown = "".join(" " if unicodedata.category(c) in _UNPRINTABLE else c for c in text[:limit * 4])
    return " ".join(shown.split())[:limit].rstrip()


def _bounded(value: object, top: int) -> int:
    """Return a count or level a model gave (a number, or a numeral in a string) as an int within 0..`top`.
    Raises ValueError for anything else: a boolean, NaN, an infinity, a word."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("not a number")
    number = float(value) if not isinstance(value, int) else value
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return min(top, max(0, int(number)))


def _incident(value: object) -> bool:
    """Return the verdict's yes or no: JSON's true or false, or those words in a string. Raises ValueError."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise ValueError("incident is neither true nor false")
    return value


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _verdict_json(text: object) -> dict:
    """Return the JSON object in a model's text: models sometimes wrap it in prose or ``` fences. Raises
    ValueError."""
    if not isinstance(text, str):
        raise ValueError("no text")
    # not a regular expression: a reply of braces cannot stall it
    start = text.find("{")
    end = text.rfind("}")
    verdict = json.loads(text[start:end + 1] if 0 <= start < end else "")
    if not isinstance(verdict, dict):
        raise ValueError("not an object")
    return verdict


def parse_reply(provider: str, reply: bytes) -> Answer:
    """Read a provider's reply into an Answer, every string the model chose made safe to show: one line,
    bounded, a type of `TYPES` ("other" for any other). Raises Malformed with what was wrong."""
    try:
        text, tokens = PROVIDERS[provider].answer(json.loads(reply))
        tokens = _bounded(tokens, MAX_TOKENS)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as error:
        raise Malformed(f"unexpected reply shape ({type(error).__name__})") from None
    try:
        verdict = _verdict_json(text)
        threat = _bounded(verdict.get("threat_level", 0), MAX_THREAT)
        incident = _incident(verdict["incident"])
    except (ValueError, KeyError, RecursionError):
        raise Malformed("the verdict is not the JSON asked for") from None
    kind = _text(verdict.get("type")).strip().lower()
    description = _one_line(_text(verdict.get("description")), MAX_DESCRIPTION)
    return Answer(incident, kind if kind in TYPES else "other", description, threat, tokens)


def ask(settings: AiSettings, jpegs: list[bytes]) -> Answer:
    """Ask the model (blocking). Raises Unreachable or Malformed."""
    try:
        request = build_request(settings, jpegs)
        with urllib.request.urlopen(request, timeout=settings.timeout_seconds) as response:
            reply = response.read(MAX_REPLY_BYTES + 1)
    except (OSError, urllib.error.URLError) as error:  # HTTPError, timeouts and refusals are OSErrors
        why = getattr(error, "reason", None) or error
        raise Unreachable(f"{settings.provider} endpoint: {why}") from None
    if len(reply) > MAX_REPLY_BYTES:
        raise Malformed(f"the reply is over {MAX_REPLY_BYTES >> 20} MiB: not a verdict")
    return parse_reply(settings.provider, reply)
