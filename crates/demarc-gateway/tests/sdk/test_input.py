"""Issue 14, input: text the caller sends outside user messages (once unscanned).

Every case must end as the same text does as a user message (test_baseline.py): prompt
injection refused with 400 before anything reaches the upstream, an e-mail address replaced
before it leaves."""

import json

import openai
import pytest

from sdkutil import EMAIL, INJECTION, MODEL, data_url, upstream_got


USER = {"role": "user", "content": "Hello, please help me."}


def assert_refused(fake, create, **kwargs):
    with pytest.raises(openai.BadRequestError):
        create(model=MODEL, **kwargs)
    assert fake.model_requests() == [], "the injection reached the upstream"


def assert_redacted(fake, create, **kwargs):
    try:
        create(model=MODEL, **kwargs)
    except openai.BadRequestError:
        assert fake.model_requests() == []
        return
    assert len(fake.model_requests()) == 1
    assert not upstream_got(fake, [EMAIL]), f"the upstream got the address: {fake.received()}"


# ------------------------------------------------------------------ chat: injection

TOOL_CALL = {"id": "call_1", "type": "function",
             "function": {"name": "lookup", "arguments": json.dumps({"query": INJECTION})}}

CHAT_INJECTION = {
    "system message": [{"role": "system", "content": INJECTION}, USER],
    "developer message": [{"role": "developer", "content": INJECTION}, USER],
    "assistant message": [USER, {"role": "assistant", "content": INJECTION}, USER],
    "assistant tool_calls arguments": [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "no results"},
        USER,
    ],
    "name field": [{"role": "user", "name": INJECTION, "content": "Hello."}],
    "image_url data URL of text/plain": [{"role": "user", "content": [
        {"type": "text", "text": "Read the attachment."},
        {"type": "image_url", "image_url": {"url": data_url(INJECTION)}},
    ]}],
    "file_data data URL of text/plain": [{"role": "user", "content": [
        {"type": "text", "text": "Read the attachment."},
        {"type": "file", "file": {"filename": "notes.txt", "file_data": data_url(INJECTION)}},
    ]}],
}


@pytest.mark.parametrize("case", list(CHAT_INJECTION))
def test_chat_injection_outside_user_text(client, fake, case):
    assert_refused(fake, client.chat.completions.create, messages=CHAT_INJECTION[case])


# ------------------------------------------------------------------ chat: personal data

TOOL_WITH_EMAIL = {"type": "function", "function": {
    "name": "send_mail", "description": f"Sends mail from {EMAIL}",
    "parameters": {"type": "object", "properties": {
        "to": {"type": "string", "description": f"recipient, e.g. {EMAIL}"}}}}}

CHAT_EMAIL = {
    "user field": {"user": EMAIL},
    "metadata": {"metadata": {"contact": EMAIL}, "store": True},
    "prediction": {"prediction": {"type": "content", "content": f"Reply to {EMAIL}"}},
    "tool description": {"tools": [TOOL_WITH_EMAIL]},
}


@pytest.mark.parametrize("case", list(CHAT_EMAIL))
def test_chat_email_outside_messages(client, fake, case):
    assert_redacted(fake, client.chat.completions.create, messages=[USER], **CHAT_EMAIL[case])


# ------------------------------------------------------------------ Responses

RESPONSES_INJECTION = {
    "instructions": {"instructions": INJECTION, "input": "Hello."},
    "developer item": {"input": [{"role": "developer", "content": INJECTION},
                                 {"role": "user", "content": "Hello."}]},
    "function_call arguments in history": {"input": [
        {"role": "user", "content": "Look it up."},
        {"type": "function_call", "call_id": "call_1", "name": "lookup",
         "arguments": json.dumps({"query": INJECTION})},
        {"type": "function_call_output", "call_id": "call_1", "output": "no results"},
    ]},
    "prompt.variables": {"prompt": {"id": "pmpt_1", "variables": {"topic": INJECTION}},
                         "input": "Hello."},
    "input_file data URL of text/plain": {"input": [{"role": "user", "content": [
        {"type": "input_text", "text": "Read the attachment."},
        {"type": "input_file", "filename": "notes.txt", "file_data": data_url(INJECTION)},
    ]}]},
}


@pytest.mark.parametrize("case", list(RESPONSES_INJECTION))
def test_responses_injection_outside_user_text(client, fake, case):
    assert_refused(fake, client.responses.create, **RESPONSES_INJECTION[case])


RESPONSES_EMAIL = {
    "prompt.variables": {"prompt": {"id": "pmpt_1", "variables": {"contact": EMAIL}},
                         "input": "Hello."},
    "metadata": {"metadata": {"contact": EMAIL}, "input": "Hello."},
    "tool description": {"tools": [{"type": "function", "name": "send_mail",
                                    "description": f"Sends mail from {EMAIL}",
                                    "parameters": {"type": "object", "properties": {}}}],
                         "input": "Hello."},
}


@pytest.mark.parametrize("case", list(RESPONSES_EMAIL))
def test_responses_email_outside_input(client, fake, case):
    assert_redacted(fake, client.responses.create, **RESPONSES_EMAIL[case])
