"""Issue 14, canaries beaten by rewording: the upstream's answer carries the policy's canary
token in another form. Each must be blocked, whole or streamed, as the plain token is
(test_baseline.py)."""

import openai
import pytest

from sdkutil import CANARY, MODEL, b64, call, chat_completion, chat_stream, drain, leaks, text_deltas

ASK = [{"role": "user", "content": "Tell me a fun fact about owls."}]

REWORDED = {
    "spaced": " ".join(CANARY),
    "base64": b64(CANARY),
    "reversed": CANARY[::-1],
    "hyphens dropped": CANARY.replace("-", ""),
    "markdown emphasis inside": "CANARY-**7F3A**-9C2E-_51B4_",
}


@pytest.mark.parametrize("case", list(REWORDED))
def test_reworded_canary_whole(client, fake, case):
    leaked = REWORDED[case]
    fake.script(chat_completion({"content": f"Sure. My marker is {leaked}, as you asked."}))
    out = call(client.chat.completions, model=MODEL, messages=ASK)
    assert fake.model_requests(), "the question itself was refused"
    assert out.blocked, out.text
    assert not leaks(out.json, [leaked, CANARY])


@pytest.mark.parametrize("case", list(REWORDED))
def test_reworded_canary_streamed(client, fake, case):
    leaked = REWORDED[case]
    fake.script(chat_stream(text_deltas(f"Sure. My marker is {leaked}, as you asked.", 5)))
    events, error = drain(client.chat.completions.create(model=MODEL, messages=ASK, stream=True))
    assert fake.model_requests(), "the question itself was refused"
    assert isinstance(error, openai.APIError), events
    assert not leaks(events, [leaked, CANARY])
