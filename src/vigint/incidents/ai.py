"""Optional AI verification of a motion event: a few JPEG frames and a prompt to a vision model.

Two request shapes: OpenAI-compatible chat completions (images as data URLs) and Gemini's
generateContent (inline data). The answer must be a JSON verdict; anything else is `Malformed`. Calls
block, so the server runs them in worker threads, under a concurrency cap and a per-client rate cap.
"""

import base64
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import quote

from vigint.config import AiSettings
from vigint.errors import VigintError
from vigint.incidents import stills
from vigint.media import Packet

PROMPT = ("You check security-camera alerts for a small business. The images are consecutive frames "
          "where motion was detected. Answer only with JSON: {\"incident\": true or false, \"type\": "
          "\"intrusion\", \"theft\", \"person\", \"vehicle\", \"animal\" or \"other\", \"description\": one short "
          "sentence, \"threat_level\": 0 (harmless), 1 (worth a look) or 2 (act now)}. Say incident false for "
          "lighting changes, weather, pets, or nothing visible.")


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
        content = [{"type": "text", "text": PROMPT},
                   *({"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{i}"}} for i in images)]
        body = {"model": settings.model, "messages": [{"role": "user", "content": content}],
                "response_format": {"type": "json_object"}}
        return f"{settings.url.rstrip('/')}/chat/completions", body, {"Authorization": f"Bearer {settings.api_key}"}

    def answer(self, document: dict) -> tuple[str, int]:
        """Return the model's text and the tokens the call used. Raises KeyError, IndexError or TypeError."""
        return document["choices"][0]["message"]["content"], int(document.get("usage", {}).get("total_tokens", 0))


class GeminiGenerate:
    """Gemini's generateContent: images as inline data, JSON asked for by MIME type."""

    def request(self, settings: AiSettings, images: list[str]) -> tuple[str, dict, dict]:
        """Return the URL, JSON body and headers asking for a verdict on base64 JPEG `images`."""
        body = {"contents": [{"parts": [{"text": PROMPT},
                                        *({"inline_data": {"mime_type": "image/jpeg", "data": i}} for i in images)]}],
                "generationConfig": {"response_mime_type": "application/json"}}
        url = f"{settings.url.rstrip('/')}/v1beta/models/{quote(settings.model)}:generateContent"
        return url, body, {"x-goog-api-key": settings.api_key}

    def answer(self, document: dict) -> tuple[str, int]:
        """Return the model's text and the tokens the call used. Raises KeyError, IndexError or TypeError."""
        text = document["candidates"][0]["content"]["parts"][0]["text"]
        return text, int(document.get("usageMetadata", {}).get("totalTokenCount", 0))


PROVIDERS = {"openai": OpenAiChat(), "gemini": GeminiGenerate()}  # the names [ai] provider takes, "none" aside


def build_request(settings: AiSettings, jpegs: list[bytes]) -> urllib.request.Request:
    """Return the HTTP request asking the configured provider for a verdict on `jpegs`."""
    images = [base64.b64encode(jpeg).decode() for jpeg in jpegs]
    url, body, headers = PROVIDERS[settings.provider].request(settings, images)
    return urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                  headers={**headers, "Content-Type": "application/json"})


def parse_reply(provider: str, reply: bytes) -> Answer:
    """Read a provider's reply into an Answer. Raises Malformed with what was wrong."""
    try:
        text, tokens = PROVIDERS[provider].answer(json.loads(reply))
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise Malformed(f"unexpected reply shape ({type(error).__name__})") from None
    fenced = re.search(r"\{.*\}", text or "", re.S)  # models sometimes wrap JSON in prose or ``` fences
    try:
        verdict = json.loads(fenced[0] if fenced else "")
        threat = int(verdict.get("threat_level", 0))
        return Answer(bool(verdict["incident"]), str(verdict.get("type") or "other")[:40],
                       str(verdict.get("description") or "")[:300], min(2, max(0, threat)), tokens)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Malformed("the verdict is not the JSON asked for") from None


def ask(settings: AiSettings, jpegs: list[bytes]) -> Answer:
    """Ask the model (blocking). Raises Unreachable or Malformed."""
    try:
        with urllib.request.urlopen(build_request(settings, jpegs), timeout=settings.timeout_seconds) as response:
            reply = response.read()
    except (OSError, urllib.error.URLError) as error:  # HTTPError, timeouts and refusals are OSErrors
        raise Unreachable(f"{settings.provider} endpoint: {getattr(error, 'reason', None) or error}") from None
    return parse_reply(settings.provider, reply)
