import json

import pytest

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
