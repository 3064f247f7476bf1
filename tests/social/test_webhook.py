"""Inbound webhooks: HMAC signatures with a timestamp, secret rotation, and parsing
normalized mention JSON (object, array or lines) with malformed items named."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from social import webhook
from social.webhook import WebhookError, parse, sign, verify

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "whsec_4f1c2a9d8e7b"
NOW = 1_746_090_000
BODY = (FIXTURES / "webhook_mentions.jsonl").read_bytes()


def test_sign_is_hmac_sha256_over_timestamp_dot_body():
    mac = hmac.new(SECRET.encode(), b"1746090000.{}", hashlib.sha256).hexdigest()
    assert sign(SECRET, b"{}", NOW) == f"sha256={mac}"
    assert sign(SECRET.encode(), b"{}", NOW) == sign(SECRET, b"{}", NOW)
    assert sign(SECRET, b"{}", NOW) != sign(SECRET, b"{}", NOW + 1)


def test_good_signature_passes():
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), str(NOW), now=NOW + 10)


def test_signature_header_case_and_spacing_do_not_matter():
    header = " " + sign(SECRET, BODY, NOW).upper().replace("SHA256", "sha256") + " "
    verify(SECRET, BODY, header, f" {NOW} ", now=NOW)


@pytest.mark.parametrize(
    ("signature", "timestamp", "now", "message"),
    [
        (None, str(NOW), NOW, "X-CRM-Signature header is missing"),
        ("", str(NOW), NOW, "X-CRM-Signature header is missing"),
        ("deadbeef", str(NOW), NOW, "must look like sha256="),
        ("sha1=deadbeef", str(NOW), NOW, "must look like sha256="),
        ("sha256=deadbeef", str(NOW), NOW, "does not match"),
        ("GOOD", None, NOW, "X-CRM-Timestamp header is missing"),
        ("GOOD", "yesterday", NOW, "whole unix seconds"),
        ("GOOD", "-5", NOW, "whole unix seconds"),
        ("GOOD", "1" * 40, NOW, "whole unix seconds"),
        ("GOOD", str(NOW), NOW + 301, "too old"),
        ("GOOD", str(NOW), NOW - 301, "in the future"),
    ],
)
def test_refusals_say_why(signature, timestamp, now, message):
    if signature == "GOOD":
        signature = sign(SECRET, BODY, NOW)
    with pytest.raises(WebhookError, match=message) as caught:
        verify(SECRET, BODY, signature, timestamp, now=now)
    assert SECRET not in str(caught.value)


def test_tolerance_edges_are_inclusive_and_configurable():
    signature = sign(SECRET, BODY, NOW)
    verify(SECRET, BODY, signature, str(NOW), now=NOW + 300)
    verify(SECRET, BODY, signature, str(NOW), now=NOW - 300)
    with pytest.raises(WebhookError, match="too old"):
        verify(SECRET, BODY, signature, str(NOW), now=NOW + 61, tolerance=60)


def test_tampered_body_fails():
    signature = sign(SECRET, BODY, NOW)
    with pytest.raises(WebhookError, match="does not match"):
        verify(SECRET, BODY.replace(b"cracked", b"perfect"), signature, str(NOW), now=NOW)


def test_replayed_signature_with_a_fresh_timestamp_fails():
    signature = sign(SECRET, BODY, NOW)
    with pytest.raises(WebhookError, match="does not match"):
        verify(SECRET, BODY, signature, str(NOW + 400), now=NOW + 400)


def test_wrong_secret_fails():
    with pytest.raises(WebhookError, match="does not match"):
        verify("other-secret", BODY, sign(SECRET, BODY, NOW), str(NOW), now=NOW)


def test_rotation_accepts_old_and_new_secrets():
    old, new = "whsec_old", b"whsec_new"
    for used in (old, new):
        verify([new, old], BODY, sign(used, BODY, NOW), str(NOW), now=NOW)
    with pytest.raises(WebhookError, match="does not match"):
        verify([new, old], BODY, sign("whsec_retired", BODY, NOW), str(NOW), now=NOW)


def test_sender_may_send_several_signatures():
    header = f"{sign('whsec_next', BODY, NOW)}, {sign(SECRET, BODY, NOW)}"
    verify(SECRET, BODY, header, str(NOW), now=NOW)


@pytest.mark.parametrize("secret", ["", b"", []])
def test_an_empty_secret_verifies_nothing(secret):
    with pytest.raises(WebhookError, match="no webhook secret"):
        verify(secret, b"", sign("x", b"", NOW), str(NOW), now=NOW)
    if secret != []:
        with pytest.raises(WebhookError, match="no webhook secret"):
            sign(secret, b"", NOW)


def test_parse_json_lines_fixture():
    mentions = parse(BODY)
    # A webhook's mentions are its own, whatever network an item claims.
    assert [m.network for m in mentions] == ["webhook", "webhook", "webhook"]
    assert mentions[0].external_id == "zap-1001"
    assert mentions[0].extra == {"ticket": 1001}
    assert mentions[1].extra == {"claimed_source": "x"}
    assert mentions[1].author_followers == 5120
    assert mentions[2].language == "es"


def test_ids_are_namespaced_by_the_source():
    mentions = parse(BODY, namespace="17")
    assert [m.external_id for m in mentions][:2] == ["17:zap-1001", "17:1786123456789012345"]
    too_long = json.dumps({**json.loads(BODY.splitlines()[0]), "external_id": "z" * 510})
    with pytest.raises(WebhookError, match="item 1: external_id is longer than 509 characters"):
        parse(too_long.encode(), namespace="17")


def test_a_webhook_speaking_for_a_network_keeps_its_network_and_ids():
    lines = BODY.decode().splitlines()
    x_only = "\n".join([lines[2], lines[2].replace("1786", "1787")])
    mentions = parse(x_only.encode(), namespace="17", network="x")
    assert [m.network for m in mentions] == ["x", "x"]
    assert mentions[0].external_id == "1786123456789012345"
    with pytest.raises(WebhookError, match="item 1: source must be x") as caught:
        parse(
            lines[0].replace('"external_id"', '"source": "mastodon", "external_id"').encode(),
            network="x",
        )
    assert [n for n, _ in caught.value.problems] == [1]
    # An item that names no network is the spoken-for network's.
    [plain] = parse(lines[0].encode(), network="bluesky")
    assert (plain.network, plain.external_id) == ("bluesky", "zap-1001")


def test_parse_one_object_and_an_array():
    item = json.loads(BODY.splitlines()[0])
    [one] = parse(json.dumps(item, indent=2).encode())
    assert one.external_id == "zap-1001"
    many = parse(json.dumps([item, {**item, "external_id": "zap-9"}]).encode())
    assert [m.external_id for m in many] == ["zap-1001", "zap-9"]
    assert parse(b"\xef\xbb\xbf" + json.dumps(item).encode())[0].external_id == "zap-1001"


def test_malformed_array_items_are_numbered():
    good = json.loads(BODY.splitlines()[0])
    body = json.dumps([good, {**good, "created_at": "soon"}, good, "text", {**good, "text": ""}])
    with pytest.raises(WebhookError) as caught:
        parse(body.encode())
    assert [n for n, _ in caught.value.problems] == [2, 4, 5]
    message = str(caught.value)
    assert "item 2: created_at is not an ISO 8601 time" in message
    assert "item 4: a mention is a JSON object" in message
    assert "item 5: text is missing" in message


def test_malformed_lines_are_numbered_by_line():
    lines = BODY.decode().splitlines()
    lines[2] = '{"external_id": "x", broken'
    with pytest.raises(WebhookError, match=r"line 3: not valid JSON") as caught:
        parse("\n".join(lines).encode())
    assert [n for n, _ in caught.value.problems] == [3]


def test_many_problems_are_summarized():
    body = "\n".join(["{}"] * 30).encode()
    with pytest.raises(WebhookError, match="and 10 more") as caught:
        parse(body)
    assert len(caught.value.problems) == 30


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"  \n ", "empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" + b" " * webhook.MAX_BODY + b"]", "larger than 1 MB"),
        (json.dumps([{}] * 501).encode(), "At most 500"),
        (b"42", "item 1: a mention is a JSON object"),
        (b'{"source": "myspace"}', "source must be one of"),
    ],
)
def test_bad_bodies(body, message):
    with pytest.raises(WebhookError, match=message):
        parse(body)


def test_webhook_error_is_a_value_error():
    assert issubclass(WebhookError, ValueError)
