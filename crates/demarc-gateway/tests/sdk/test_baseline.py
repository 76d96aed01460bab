"""What already works through the gateway with the official SDK: these prove the harness (real
processes, scripted upstream, policy) and are the reference the issue-14 cases compare with."""

import openai
import pytest

from sdkutil import (
    CANARY,
    EMAIL,
    INJECTION,
    MODEL,
    SECRET,
    call,
    chat_completion,
    chat_stream,
    chat_text,
    drain,
    leaks,
    text_deltas,
    upstream_got,
)


def test_chat_redacts_email_before_the_upstream_and_restores_it_for_the_client(client, fake):
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": f"Write to {EMAIL} please"}]
    )
    assert r.choices[0].message.content == f"echo: Write to {EMAIL} please"
    [got] = fake.received("/chat/completions")
    assert got["body"]["model"] == MODEL
    assert "[[EMAIL_" in got["body"]["messages"][0]["content"]
    assert not upstream_got(fake, [EMAIL])


def test_streamed_chat_arrives_whole(client, fake):
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "a streamed hello"}], stream=True
    )
    events, error = drain(stream)
    assert error is None
    assert chat_text(events) == "echo: a streamed hello"
    [got] = fake.received("/chat/completions")
    assert got["body"]["stream"] is True


def test_responses_whole_and_streamed(client, fake):
    r = client.responses.create(model=MODEL, input=f"hello from {EMAIL}")
    assert r.output_text == f"echo: hello from {EMAIL}"
    with client.responses.stream(model=MODEL, input="streamed hello") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "echo: streamed hello"
    assert len(fake.received("/responses")) == 2
    assert not upstream_got(fake, [EMAIL])


def test_embeddings_redact_personal_data(client, fake):
    r = client.embeddings.create(model="text-embedding-3-small", input=[f"doc about {EMAIL}", "b"])
    assert len(r.data) == 2
    [got] = fake.received("/embeddings")
    assert not upstream_got(fake, [EMAIL])
    assert "[[EMAIL_" in got["body"]["input"][0]


def test_models_list(client, fake):
    ids = [m.id for m in client.models.list()]
    assert ids


def test_injection_as_a_user_message_is_blocked_before_the_upstream(client, fake):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": INJECTION}])
    assert fake.model_requests() == []


def test_scripted_answer_with_a_secret_in_content_is_blocked(client, fake):
    fake.script(chat_completion({"content": f"The key is {SECRET}."}))
    out = call(client.chat.completions, model=MODEL, messages=[{"role": "user", "content": "key?"}])
    assert out.blocked, out.text
    assert not leaks(out.json, [SECRET])


def test_scripted_stream_with_a_secret_in_content_ends_blocked(client, fake):
    fake.script(chat_stream(text_deltas(f"Sure, the key is {SECRET} as asked.")))
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "key?"}], stream=True
    )
    events, error = drain(stream)
    assert isinstance(error, openai.APIError)
    assert not leaks(events, [SECRET])


def test_plain_canary_in_the_answer_is_blocked(client, fake):
    fake.script(chat_completion({"content": f"My marker is {CANARY}."}))
    out = call(client.chat.completions, model=MODEL, messages=[{"role": "user", "content": "?"}])
    assert out.blocked, out.text
    assert not leaks(out.json, [CANARY])
