import asyncio
import json
import re
from types import SimpleNamespace

import pytest
from aiohttp import web
from footage import make_scene
from helpers import add_client, eventually
from test_incidents import incident_settings, stream_scene

from vigint.alerts import emails
from vigint.config import AiSettings
from vigint.incidents import ai


def test_openai_and_gemini_replies_become_verdicts():
    openai = {"choices": [{"message": {"content": '{"incident": true, "type": "theft", "description": "Shelf '
                                                  'emptied.", "threat_level": 2}'}}], "usage": {"total_tokens": 900}}
    gemini = {"candidates": [{"content": {"parts": [{"text": '{"incident": false, "type": "animal", '
                                                             '"description": "A cat.", "threat_level": 0}'}]}}],
              "usageMetadata": {"totalTokenCount": 640}}
    assert ai.parse_reply("openai", json.dumps(openai).encode()) == ai.Answer(True, "theft", "Shelf emptied.", 2, 900)
    assert ai.parse_reply("gemini", json.dumps(gemini).encode()) == ai.Answer(False, "animal", "A cat.", 0, 640)


@pytest.mark.parametrize("reply", [b"not json", b'{"choices": []}',
                                   json.dumps({"choices": [{"message": {"content": "I think so!"}}]}).encode(),
                                   json.dumps({"choices": [{"message": {"content": '{"type": "x"}'}}]}).encode()])
def test_malformed_replies_are_reported_as_such(reply):
    with pytest.raises(ai.Malformed):
        ai.parse_reply("openai", reply)


def test_requests_carry_the_images_and_the_key_in_each_providers_shape():
    jpegs = [b"\xff\xd8first", b"\xff\xd8second"]
    gemini = ai.build_request(AiSettings(provider="gemini", url="https://g.example", api_key="k", model="flash"), jpegs)
    body = json.loads(gemini.data)
    assert gemini.full_url == "https://g.example/v1beta/models/flash:generateContent"
    assert gemini.get_header("X-goog-api-key") == "k"
    assert [p["inline_data"]["mime_type"] for p in body["contents"][0]["parts"][1:]] == ["image/jpeg"] * 2
    openai = ai.build_request(AiSettings(provider="openai", url="https://o.example/v1/", api_key="k", model="m"), jpegs)
    assert openai.full_url == "https://o.example/v1/chat/completions"
    assert json.loads(openai.data)["model"] == "m" and openai.get_header("Authorization") == "Bearer k"
    assert "k" not in repr(AiSettings(api_key="k"))


@pytest.fixture
async def endpoint():
    """A real OpenAI-compatible endpoint on loopback answering each chat completion with `endpoint.reply` (a
    dict, sent as JSON, or raw bytes)."""

    async def complete(request: web.Request) -> web.Response:
        await request.read()
        reply = endpoint.reply
        return web.Response(body=reply if isinstance(reply, bytes) else json.dumps(reply).encode(),
                            content_type="application/json")

    app = web.Application(client_max_size=8 << 20)
    app.router.add_post("/v1/chat/completions", complete)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    endpoint = SimpleNamespace(reply=None, settings=AiSettings(
        provider="openai", url=f"http://127.0.0.1:{runner.addresses[0][1]}/v1", api_key="sk-test", model="vision"))
    yield endpoint
    await runner.cleanup()


def verdict(tokens=100, **fields) -> dict:
    """An OpenAI-compatible reply whose message is the JSON verdict `fields` (over a plain, valid one)."""
    content = {"incident": True, "type": "intrusion", "description": "A person climbs in.", "threat_level": 1, **fields}
    return {"choices": [{"message": {"content": json.dumps(content)}}], "usage": {"total_tokens": tokens}}


def with_number(name: str, number: str) -> bytes:
    """A valid reply whose `name` (threat_level or total_tokens) is `number`, written as is (NaN, Infinity)."""
    return re.sub(rf'(\\?"{name}\\?": )1(00)?', rf"\g<1>{number}", json.dumps(verdict())).encode()


MEGABYTE = "x" * 1_000_000
PLAIN = "A person climbs in."


@pytest.mark.parametrize("fields, kind, description, threat", [
    ({"type": "intrusion\r\nBcc: everyone@example.test"}, "other", PLAIN, 1),  # the type that stopped alerts
    ({"type": " Theft\n"}, "theft", PLAIN, 1),
    ({"type": "camera_down"}, "other", PLAIN, 1),  # a word that means something else in alerts
    ({"type": MEGABYTE, "description": MEGABYTE}, "other", "x" * ai.MAX_DESCRIPTION, 1),
    ({"description": "Two men.\r\nSubject: hi\u2028\u202ecod.exe\x00\x1b[31m red\ud800"}, "intrusion",
     "Two men. Subject: hi cod.exe [31m red", 1),
    ({"type": ["person"], "description": {"a": 1}}, "other", "", 1),
    ({"threat_level": 7}, "intrusion", PLAIN, 2),
    ({"threat_level": -3}, "intrusion", PLAIN, 0),
    ({"threat_level": "2"}, "intrusion", PLAIN, 2),
    ({"threat_level": 1e300}, "intrusion", PLAIN, 2),
], ids=["crlf-type", "spaced-type", "camera-event-type", "megabyte", "controls", "not-strings", "threat-7",
        "threat-negative", "threat-string", "threat-huge"])
async def test_every_string_a_model_chooses_comes_back_one_line_bounded_and_of_a_known_type(endpoint, fields, kind,
                                                                                            description, threat):
    endpoint.reply = verdict(**fields)
    answer = await asyncio.to_thread(ai.ask, endpoint.settings, [b"\xff\xd8jpeg"])
    assert (answer.incident, answer.type, answer.description, answer.threat) == (True, kind, description, threat)
    assert answer.description.isprintable() and len(answer.description) <= ai.MAX_DESCRIPTION


@pytest.mark.parametrize("reply", [
    with_number("threat_level", "NaN"), with_number("threat_level", "Infinity"),
    with_number("total_tokens", "Infinity"),
    verdict(incident="maybe"), verdict(incident=None), verdict(threat_level=True), verdict(tokens="lots"),
    {"choices": [{"message": {"content": "{" * 200_000}}]},  # no stall on a reply of braces
    {"choices": [{"message": {"content": "[" * 100_000 + "]" * 100_000}}]},
    b"[" * 100_000 + b"]" * 100_000,
    {"choices": [{"message": {"content": ["not", "text"]}}]}, {"choices": "none"}, {"usage": 5},
    b'{"choices": [{"message": {"content": "' + b"y" * (ai.MAX_REPLY_BYTES + 10) + b'"}}]}',
], ids=["threat-nan", "threat-infinite", "tokens-infinite", "incident-maybe", "incident-null", "threat-boolean",
        "tokens-word", "braces", "deep-verdict", "deep-reply", "content-list", "choices-string", "usage-number",
        "over-2-mib"])
async def test_a_reply_that_is_no_verdict_is_malformed_never_a_crash(endpoint, reply):
    endpoint.reply = reply
    with pytest.raises(ai.Malformed):
        await asyncio.to_thread(ai.ask, endpoint.settings, [b"\xff\xd8jpeg"])


async def test_tokens_are_counted_within_bounds(endpoint):
    for tokens, counted in ((-500, 0), (10**30, ai.MAX_TOKENS), (321.0, 321)):
        endpoint.reply = verdict(tokens=tokens)
        assert (await asyncio.to_thread(ai.ask, endpoint.settings, [b"\xff\xd8jpeg"])).tokens == counted


async def test_a_verdict_with_a_line_break_in_its_type_still_alerts_the_customer(start, tmp_path, mailbox, endpoint):
    endpoint.reply = verdict(type="intrusion\r\nBcc: everyone@example.test",
                             description="A person climbs in.\r\nSubject: nothing to see")
    server = await start(settings=incident_settings(tmp_path, mailbox.port, ai=endpoint.settings))
    client_id, _, api_key = await add_client(server.store)
    await stream_scene(server, api_key, make_scene(20, moving=(7, 10)))
    await eventually(lambda: len(mailbox.messages) == 1, timeout=30)
    [message] = mailbox.messages
    assert message["To"] == "ops@acme.test" and message["Bcc"] is None and "\n" not in message["Subject"]
    assert "A person climbs in. Subject: nothing to see" in emails.text_of(message)
    async def delivered():  # recorded once the SMTP server's answer is in, a moment after the message
        [incident] = await server.store.list_incidents(client_id)
        return incident.alert_state == "delivered" and incident
    incident = await eventually(delivered, timeout=10)
    assert (incident.type, incident.verdict) == ("other", "confirmed")
