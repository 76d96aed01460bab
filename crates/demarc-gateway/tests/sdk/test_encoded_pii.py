"""Issue 14, encoded personal data: the e-mail address and numbers written so that the
detectors' plain patterns miss them. The upstream must get neither the value nor its encoding
(replaced, or the request refused before it leaves)."""

import openai
import pytest

from sdkutil import EMAIL, MODEL, b64, upstream_got


def send(client, fake, messages):
    """Send; True when the gateway refused the request (then nothing may have left)."""
    try:
        client.chat.completions.create(model=MODEL, messages=messages)
    except openai.BadRequestError:
        assert fake.model_requests() == []
        return True
    assert len(fake.model_requests()) == 1
    return False


def user(text):
    return [{"role": "user", "content": text}]


def lookalike(text: str) -> str:
    """Latin letters replaced by the Cyrillic ones that look the same."""
    return text.translate(str.maketrans("aeopcx", "\u0430\u0435\u043e\u0440\u0441\u0445"))


def digits(text: str, zero: int) -> str:
    """ASCII digits written in another script whose zero is `zero`."""
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


SSN = "536-22-1234"
CARD = "4111 1111 1111 1111"

ENCODED = {
    "email base64": (f"Mail me at {b64(EMAIL)} (base64)", [EMAIL, b64(EMAIL)]),
    "email double base64": (f"Mail me at {b64(b64(EMAIL))}",
                            [EMAIL, b64(EMAIL), b64(b64(EMAIL))]),
    "email hex": (f"Mail me at {EMAIL.encode().hex()} (hex)", [EMAIL, EMAIL.encode().hex()]),
    "email %40": ("Mail me at " + EMAIL.replace("@", "%40"), [EMAIL, EMAIL.replace("@", "%40")]),
    "email literal \\u0040": ("Mail me at " + EMAIL.replace("@", "\\u0040"),
                              [EMAIL, EMAIL.replace("@", "\\u0040")]),
    "email Cyrillic look-alikes": (f"Mail me at {lookalike(EMAIL)}", [EMAIL, lookalike(EMAIL)]),
    "SSN Arabic-Indic digits": (f"My SSN is {digits(SSN, 0x660)}",
                                [SSN, "536221234", digits(SSN, 0x660)]),
    "SSN Devanagari digits": (f"My SSN is {digits(SSN, 0x966)}",
                              [SSN, "536221234", digits(SSN, 0x966)]),
    "SSN digits spaced": ("My SSN is " + " ".join("536221234"),
                          [SSN, "536221234", " ".join("536221234")]),
    "card digits spaced": ("My card number is " + " ".join(CARD.replace(" ", "")),
                           [CARD, CARD.replace(" ", ""), " ".join(CARD.replace(" ", ""))]),
}


@pytest.mark.parametrize("case", list(ENCODED))
def test_encoded_value_never_reaches_the_upstream(client, fake, case):
    text, needles = ENCODED[case]
    send(client, fake, user(text))
    assert not upstream_got(fake, needles), fake.received()


@pytest.mark.parametrize("text,needles", [
    (f"My SSN is {SSN}", [SSN]),
    (f"My card number is {CARD}", [CARD, CARD.replace(" ", "")]),
    (f"Mail me at {EMAIL}", [EMAIL]),
])
def test_plain_values_are_replaced(client, fake, text, needles):
    """The same values written plainly: what the encoded cases are held to."""
    assert not send(client, fake, user(text))
    assert not upstream_got(fake, needles)


def joined_user_text(fake) -> str:
    """The user texts that reached the upstream, run together as a model reads them."""
    out = []
    for r in fake.model_requests():
        for m in r["body"].get("messages", []):
            c = m.get("content")
            if isinstance(c, str):
                out.append(c)
            elif isinstance(c, list):
                out += [p.get("text", "") for p in c if isinstance(p, dict)]
    return "".join(out)


LOCAL, DOMAIN = EMAIL.split("@")

SPLIT = {
    "across two messages": [{"role": "user", "content": f"My address starts {LOCAL}"},
                            {"role": "user", "content": f"@{DOMAIN}"}],
    "across two content parts": [{"role": "user", "content": [
        {"type": "text", "text": f"My address starts {LOCAL}"},
        {"type": "text", "text": f"@{DOMAIN}"}]}],
}


@pytest.mark.parametrize("case", list(SPLIT))
def test_split_value_never_reaches_the_upstream(client, fake, case):
    send(client, fake, SPLIT[case])
    text = joined_user_text(fake)
    assert f"{LOCAL}@{DOMAIN}" not in text, text
    assert f"{LOCAL} @{DOMAIN}" not in text, text
