"""Issue 14, output: text the upstream returns outside the main text field (once unscanned).

Each case scripts an upstream answer whose ordinary text is clean and whose other field carries
the secret (blocked on output by the suite's policy), and checks what reached the client: a
whole answer must be refused (400) or come back without the secret; a stream must not deliver
it before the block."""

import openai
import pytest

from sdkutil import (
    MODEL,
    SECRET,
    call,
    chat_chunk,
    chat_completion,
    chat_stream,
    drain,
    leaks,
    logprob,
    message_item,
    output_text,
    response_obj,
    response_stream,
)

ASK = [{"role": "user", "content": "What is the deploy key?"}]


def whole_chat(client, fake, answer, **kwargs):
    fake.script(answer)
    out = call(client.chat.completions, model=MODEL, messages=ASK, **kwargs)
    assert fake.model_requests(), "the question itself was refused"
    assert out.error is None or out.blocked, out.text
    assert not leaks(out.json, [SECRET]), f"the client got the secret: {out.text}"
    return out


def streamed(client, fake, answer, api="chat", **kwargs):
    fake.script(answer)
    if api == "chat":
        stream = client.chat.completions.create(model=MODEL, messages=ASK, stream=True, **kwargs)
    else:
        stream = client.responses.create(model=MODEL, input="What is the deploy key?",
                                         stream=True, **kwargs)
    events, error = drain(stream)
    assert fake.model_requests(), "the question itself was refused"
    assert not leaks(events, [SECRET]), f"the client got the secret: {events}"
    return events, error


def whole_response(client, fake, body):
    fake.script({"body": body})
    out = call(client.responses, model=MODEL, input="What is the deploy key?")
    assert fake.model_requests(), "the question itself was refused"
    assert out.error is None or out.blocked, out.text
    assert not leaks(out.json, [SECRET]), f"the client got the secret: {out.text}"
    return out


# ------------------------------------------------------------------ logprobs


SPLIT = [SECRET[:8], SECRET[8:]]  # the secret over two tokens


def chat_logprobs(where: str) -> dict:
    """Logprobs for a clean answer, with the secret in `where`."""
    tokens = [logprob("All"), logprob(" good.")]
    if where == "token":
        tokens += [logprob(t) for t in SPLIT]
    elif where == "top_logprobs":
        tokens[1] = logprob(" good.", top=[" good.", SECRET])
    elif where == "bytes":
        tokens[1] = {**logprob(" good."), "bytes": list(SECRET.encode())}
    return {"content": tokens}


@pytest.mark.parametrize("where", ["token", "top_logprobs", "bytes"])
def test_logprobs_whole(client, fake, where):
    whole_chat(client, fake, chat_completion(logprobs=chat_logprobs(where)), logprobs=True,
               top_logprobs=2)


@pytest.mark.parametrize("where", ["token", "top_logprobs", "bytes"])
def test_logprobs_streamed(client, fake, where):
    lp = chat_logprobs(where)["content"]
    chunks = [chat_chunk({"content": "All"}, logprobs={"content": lp[:1]}),
              chat_chunk({"content": " good."}, logprobs={"content": lp[1:]})]
    streamed(client, fake, chat_stream(chunks), logprobs=True, top_logprobs=2)


# ------------------------------------------------------------------ other chat fields


def test_refusal_whole(client, fake):
    whole_chat(client, fake, chat_completion({"content": None, "refusal": f"No: {SECRET}"}))


def test_refusal_streamed(client, fake):
    streamed(client, fake, chat_stream([chat_chunk({"refusal": "I won't say "}),
                                        chat_chunk({"refusal": SECRET})]))


def test_reasoning_content_whole(client, fake):
    whole_chat(client, fake, chat_completion({"reasoning_content": f"The key is {SECRET}."}))


def test_reasoning_content_streamed(client, fake):
    streamed(client, fake, chat_stream([chat_chunk({"reasoning_content": "The key is "}),
                                        chat_chunk({"reasoning_content": SECRET}),
                                        chat_chunk({"content": "All good."})]))


def test_audio_transcript_whole(client, fake):
    audio = {"id": "audio_1", "data": "", "expires_at": 0, "transcript": f"The key is {SECRET}."}
    whole_chat(client, fake, chat_completion({"content": None, "audio": audio}))


def test_audio_transcript_streamed(client, fake):
    streamed(client, fake, chat_stream([chat_chunk({"audio": {"id": "audio_1", "transcript": "The key is "}}),
                                        chat_chunk({"audio": {"transcript": SECRET}})]))


def test_content_as_parts_whole(client, fake):
    parts = [{"type": "text", "text": "The key is "}, {"type": "text", "text": SECRET}]
    whole_chat(client, fake, chat_completion({"content": parts}))


def test_upstream_error_body(client, fake):
    err = {"error": {"message": f"Invalid key {SECRET} for this model", "type": "invalid_request_error",
                     "param": None, "code": "invalid_api_key"}}
    fake.script({"status": 400, "body": err})
    out = call(client.chat.completions, model=MODEL, messages=ASK)
    assert isinstance(out.error, openai.APIStatusError)
    assert not leaks(out.json, [SECRET]), out.text
    assert SECRET not in str(out.error)


# ------------------------------------------------------------------ Responses, whole


def test_responses_refusal_part(client, fake):
    part = {"type": "refusal", "refusal": f"I refuse to print {SECRET}"}
    whole_response(client, fake, response_obj([message_item([part])]))


def test_responses_reasoning_summary(client, fake):
    item = {"id": "rs_1", "type": "reasoning",
            "summary": [{"type": "summary_text", "text": f"The key is {SECRET}"}]}
    whole_response(client, fake, response_obj([item, message_item([output_text("All good.")])]))


def test_responses_output_text_logprobs(client, fake):
    lps = [logprob("All"), logprob(" good.", top=[" good.", SECRET]), logprob(SECRET)]
    part = output_text("All good.", logprobs=lps)
    whole_response(client, fake, response_obj([message_item([part])]))


def test_responses_top_level_output_text(client, fake):
    body = response_obj([message_item([output_text("All good.")])], output_text=f"key {SECRET}")
    whole_response(client, fake, body)


# ------------------------------------------------------------------ Responses, streamed


def item_added(text: str) -> tuple:
    return ("response.output_item.added",
            {"output_index": 0, "item": message_item([output_text(text)], status="in_progress")})


def test_responses_stream_output_item_added(client, fake):
    streamed(client, fake, response_stream([item_added(f"The key is {SECRET}")]), api="responses")


def test_responses_stream_content_part_added(client, fake):
    ev = ("response.content_part.added",
          {"item_id": "msg_script", "output_index": 0, "content_index": 0,
           "part": output_text(f"The key is {SECRET}")})
    streamed(client, fake, response_stream([item_added(""), ev]), api="responses")


def test_responses_stream_refusal_delta(client, fake):
    evs = [("response.refusal.delta", {"item_id": "msg_script", "output_index": 0,
                                       "content_index": 0, "delta": d})
           for d in ["No. The key is ", SECRET[:10], SECRET[10:]]]
    streamed(client, fake, response_stream([item_added(""), *evs]), api="responses")


def test_responses_stream_reasoning_summary_delta(client, fake):
    evs = [("response.reasoning_summary_text.delta",
            {"item_id": "rs_1", "output_index": 0, "summary_index": 0, "delta": d})
           for d in ["Thinking: the key is ", SECRET]]
    streamed(client, fake, response_stream(evs), api="responses")
