"""Issue 14, surface: endpoints and behaviours an SDK user meets beyond chat and Responses."""

import re
import time
import urllib.error
import urllib.request

import openai
import pytest

from conftest import http_get
from sdkutil import (
    EMAIL,
    INJECTION,
    MODEL,
    SECRET,
    chat_stream,
    chat_text,
    drain,
    leaks,
    message_item,
    output_text,
    response_stream,
    text_deltas,
    upstream_got,
)


# ------------------------------------------------------------------ models and legacy completions


def test_models_retrieve(client, fake):
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL


def test_legacy_completions_work(client, fake):
    r = client.completions.create(model=MODEL, prompt="Say hello")
    assert r.choices[0].text == "echo: Say hello"
    stream = client.completions.create(model=MODEL, prompt="Say hello", stream=True)
    events, error = drain(stream)
    assert error is None
    assert "".join(c["text"] for e in events for c in e["choices"]) == "echo: Say hello"


def test_legacy_completions_are_scanned(client, fake):
    client.completions.create(model=MODEL, prompt=f"Write to {EMAIL}")
    assert len(fake.model_requests()) == 1
    assert not upstream_got(fake, [EMAIL])
    fake.reset()
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL, prompt=INJECTION)
    assert fake.model_requests() == []
    fake.script({"body": {"id": "cmpl-s", "object": "text_completion", "created": 0, "model": MODEL,
                          "choices": [{"index": 0, "text": f"key {SECRET}", "finish_reason": "stop",
                                       "logprobs": None}]}})
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL, prompt="What is the key?")
    assert SECRET not in e.value.response.text


# ------------------------------------------------------------------ malformed requests


MALFORMED = {
    "messages not a list": {"model": MODEL, "messages": "Hello"},
    "empty model": {"model": "", "messages": [{"role": "user", "content": "Hello"}]},
    "empty messages": {"model": MODEL, "messages": []},
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_chat_is_refused_before_the_upstream(client, fake, case):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(**MALFORMED[case])
    assert fake.model_requests() == []


# ------------------------------------------------------------------ streams


def responses_text_stream(deltas: list[str], completed: bool = True) -> dict:
    """A scripted Responses stream of one message whose text comes in `deltas`."""
    added = ("response.output_item.added",
             {"output_index": 0, "item": message_item([], status="in_progress")})
    part = ("response.content_part.added",
            {"item_id": "msg_script", "output_index": 0, "content_index": 0,
             "part": output_text("")})
    ds = [("response.output_text.delta",
           {"item_id": "msg_script", "output_index": 0, "content_index": 0, "delta": d})
          for d in deltas]
    answer = response_stream([added, part, *ds],
                             final_output=[message_item([output_text("".join(deltas))])])
    if not completed:
        answer["events"] = answer["events"][:-1]
    return answer


BLOCKED = {
    # Once blocked, the stream ends with `response.failed` and an `error` the SDK raises on.
    "secret mid-answer": ["The key is ", SECRET, " and that is all, thanks for asking."],
    # The secret is held back at the end: blocked when `response.completed` arrives.
    "secret at the end": ["The key is ", SECRET],
}


@pytest.mark.parametrize("case", list(BLOCKED))
def test_blocked_responses_stream_gives_a_clear_error(client, fake, case):
    fake.script(responses_text_stream(BLOCKED[case]))
    events = []
    try:
        with client.responses.stream(model=MODEL, input="What is the key?") as stream:
            for e in stream:
                events.append(e.to_dict(mode="json", warnings=False))
            final = stream.get_final_response()
    except openai.APIError as e:
        assert SECRET not in str(e)
        return
    except RuntimeError as e:
        pytest.fail(f"unclear error for a blocked stream: {e}")
    finally:
        assert not leaks(events, [SECRET])
    assert final.status == "failed", final


@pytest.mark.parametrize("case", list(BLOCKED))
def test_blocked_responses_stream_delivers_no_secret(client, fake, case):
    fake.script(responses_text_stream(BLOCKED[case]))
    events, _ = drain(client.responses.create(model=MODEL, input="What is the key?", stream=True))
    assert not leaks(events, [SECRET])


# The tail is held back by the output scan (a word that may begin a secret: `ghp_12`).
TAIL = "The build is done; the ticket says ghp_12"


@pytest.mark.parametrize("done", [True, False], ids=["with [DONE]", "without [DONE]"])
def test_chat_stream_keeps_its_last_characters(client, fake, done):
    fake.script(chat_stream(text_deltas(TAIL, 6), done=done))
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Status?"}], stream=True)
    events, error = drain(stream)  # without [DONE] an error may say the stream was cut short
    assert chat_text(events) == TAIL
    if done:
        assert error is None


def test_chat_stream_cut_mid_sentence_keeps_its_last_characters(client, fake):
    """No finish chunk and no [DONE]: the upstream just stops."""
    answer = chat_stream(text_deltas(TAIL, 6), done=False)
    answer["events"] = answer["events"][:-1]
    fake.script(answer)
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Status?"}], stream=True)
    events, _ = drain(stream)
    assert chat_text(events) == TAIL


def responses_text(events: list[dict]) -> str:
    return "".join(e.get("delta", "") for e in events
                   if e.get("type") == "response.output_text.delta")


def test_responses_stream_keeps_its_last_characters(client, fake):
    fake.script(responses_text_stream([TAIL[:20], TAIL[20:]]))
    with client.responses.stream(model=MODEL, input="Status?") as stream:
        events = [e.to_dict(mode="json", warnings=False) for e in stream]
        final = stream.get_final_response()
    assert responses_text(events) == TAIL
    assert final.output_text == TAIL


def test_responses_stream_without_completed_keeps_its_last_characters(client, fake):
    fake.script(responses_text_stream([TAIL[:20], TAIL[20:]], completed=False))
    events, _ = drain(client.responses.create(model=MODEL, input="Status?", stream=True))
    assert responses_text(events) == TAIL


# ------------------------------------------------------------------ operations


def test_readyz_is_503_while_draining(stack, fake):
    gw = stack.start_gateway("draining")
    try:
        fake.script(chat_stream(text_deltas("a slow answer that keeps the gateway draining", 3),
                                delay_ms=200))
        client = stack.client(gw)
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hello"}], stream=True)
        first = next(iter(stream))
        assert first.choices
        assert http_get(gw.url + "/readyz")[0] == 200
        gw.proc.send_signal(15)  # SIGTERM: drain
        # While the stream drains (about 3 s), /readyz must answer, 200 until the signal is
        # handled and 503 from then on: a load balancer then stops sending new requests.
        seen = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            seen.append(http_get(gw.url + "/readyz", timeout=0.3)[0])
            time.sleep(0.05)
        rest, error = drain(stream)
        assert error is None, "the in-flight stream was not drained"
        answers = "".join({200: "r", 503: "d"}.get(s, "x") for s in seen)
        assert re.fullmatch("r*d+", answers), \
            f"/readyz while draining answered {seen} (0: no answer)"
    finally:
        gw.stop()


def test_metrics_counter_names(stack, client, fake):
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}])
    status, text = http_get(stack.gateway.url + "/metrics")
    assert status == 200
    assert re.search(r"^# TYPE demarc_gateway_audit_written_total counter$", text, re.M), text
    assert re.search(r"^demarc_gateway_audit_written_total(\{.*\})? \d", text, re.M), text


def request(url: str, method: str, key: str) -> int:
    req = urllib.request.Request(url, method=method, headers={"authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def wait_for_audit(stack, since_ms: int, status: int, seconds: float = 10) -> list[dict]:
    deadline = time.monotonic() + seconds
    while True:
        found = [e for e in stack.audit_events(since_ms) if e.get("status") == status]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_served_request_leaves_an_audit_event(stack, client, fake):
    since = int(time.time() * 1000) - 1
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}])
    events = wait_for_audit(stack, since, 200)
    assert events, "no audit event for a served request"
    assert events[-1]["application"] == "sdk-app"


@pytest.mark.parametrize("method,path,status", [("GET", "/v1/no-such-endpoint", 404),
                                                ("POST", "/v1/no-such-endpoint", 404),
                                                ("GET", "/v1/chat/completions", 405)])
def test_404_and_405_leave_an_audit_event(stack, fake, method, path, status):
    since = int(time.time() * 1000) - 1
    assert request(stack.gateway.url + path, method, stack.key) == status
    events = wait_for_audit(stack, since, status, seconds=3)
    assert events, f"no audit event for {method} {path} ({status})"
