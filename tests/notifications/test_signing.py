import time

from notifications import signing

SECRET = "whsec_test"
BODY = b'{"type":"confirmation.requested"}'


def _signed(now=None, body=BODY, secret=SECRET):
    return signing.signed_headers(secret=secret, body=body, delivery_id="d-1", now=now)


def test_signature_over_timestamp_and_body_verifies():
    headers = _signed()
    assert headers[signing.SIGNATURE_HEADER].startswith("v1=")
    assert signing.verify_signature(
        secret=SECRET,
        timestamp=headers[signing.TIMESTAMP_HEADER],
        body=BODY,
        signature=headers[signing.SIGNATURE_HEADER],
    )


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signing.compute_signature(secret=SECRET, timestamp=1700000000, body=BODY) == (
        f"v1={expected}"
    )


def test_wrong_secret_or_changed_body_is_rejected():
    headers = _signed()
    ts, sig = headers[signing.TIMESTAMP_HEADER], headers[signing.SIGNATURE_HEADER]
    assert not signing.verify_signature(secret="other", timestamp=ts, body=BODY, signature=sig)
    assert not signing.verify_signature(
        secret=SECRET, timestamp=ts, body=BODY + b" ", signature=sig
    )


def test_timestamp_older_than_five_minutes_is_rejected():
    old = time.time() - 301
    headers = _signed(now=old)
    assert not signing.verify_signature(
        secret=SECRET,
        timestamp=headers[signing.TIMESTAMP_HEADER],
        body=BODY,
        signature=headers[signing.SIGNATURE_HEADER],
    )


def test_timestamp_far_in_the_future_is_rejected():
    headers = _signed(now=time.time() + 600)
    assert not signing.verify_signature(
        secret=SECRET,
        timestamp=headers[signing.TIMESTAMP_HEADER],
        body=BODY,
        signature=headers[signing.SIGNATURE_HEADER],
    )


def test_replaying_a_signature_with_a_new_timestamp_fails():
    headers = _signed(now=time.time() - 100)
    assert not signing.verify_signature(
        secret=SECRET,
        timestamp=str(int(time.time())),
        body=BODY,
        signature=headers[signing.SIGNATURE_HEADER],
    )


def test_malformed_or_missing_headers_are_rejected():
    sig = _signed()[signing.SIGNATURE_HEADER]
    for timestamp, signature in [
        (None, sig),
        ("soon", sig),
        ("1", None),
        (str(int(time.time())), "x"),
    ]:
        assert not signing.verify_signature(
            secret=SECRET, timestamp=timestamp, body=BODY, signature=signature
        )


def test_any_of_several_signatures_may_match_during_secret_rotation():
    headers = _signed()
    combined = f"v1={'0' * 64}, {headers[signing.SIGNATURE_HEADER]}"
    assert signing.verify_signature(
        secret=SECRET, timestamp=headers[signing.TIMESTAMP_HEADER], body=BODY, signature=combined
    )


def test_new_secrets_are_distinct_and_long():
    a, b = signing.new_secret(), signing.new_secret()
    assert a != b and a.startswith("whsec_") and len(a) > 40
