"""Coupon codes: signed tokens with rotating keys, typable short codes with a check character."""

from __future__ import annotations

import pytest

from promotions.codes import (
    ALPHABET,
    NO_SUCH_CODE,
    CouponCodec,
    CouponRef,
    InvalidCode,
    normalize_short_code,
    parse_keys,
)

from .promo_helpers import KEYS

OLD_KEY = KEYS[1]  # ("k1", ...): second in the list, verifies only
NEW_KEY = KEYS[0]  # ("k2", ...): first in the list, signs


@pytest.fixture
def codec():
    return CouponCodec(KEYS)


def refused(codec, code, how="verify"):
    with pytest.raises(InvalidCode) as info:
        getattr(codec, how)(code)
    assert info.value.code == "INVALID_CODE"
    assert info.value.status == 422
    return info.value


# -- signed tokens -----------------------------------------------------------------------------
@pytest.mark.parametrize("coupon_id", ["1-1", "12-345", "7-100000", "999999999999-999999999999"])
def test_token_round_trip(codec, coupon_id):
    token = codec.token(coupon_id)
    ref = codec.verify_token(token)
    assert ref.coupon_id == coupon_id
    assert codec.verify(token) == ref
    assert codec.verify(f"  {token}\n") == ref  # a scanner's stray whitespace


def test_new_tokens_are_signed_with_the_first_key(codec):
    prefix, kid, coupon_id, signature = codec.token("3-9").split(".")
    assert (prefix, kid, coupon_id) == ("FF1", NEW_KEY[0], "3-9")
    assert len(signature) == 22  # 128 bits, base64url without padding


def test_token_of_the_old_key_still_verifies_after_rotation(codec):
    before_rotation = CouponCodec([OLD_KEY])
    old_token = before_rotation.token("5-77")
    assert old_token.split(".")[1] == OLD_KEY[0]
    assert codec.verify(old_token) == CouponRef("5", 77)
    # ... and the rotated codec signs the same coupon differently, with the new key.
    assert codec.token("5-77") != old_token
    assert codec.token("5-77").split(".")[1] == NEW_KEY[0]


def test_token_with_an_unknown_key_id_is_refused(codec):
    stranger = CouponCodec([("k9", b"some-other-key-of-16+")])
    error = refused(codec, stranger.token("5-77"))
    assert "unknown key" in error.message


def test_token_with_a_known_key_id_but_another_secret_is_refused(codec):
    impostor = CouponCodec([(NEW_KEY[0], b"not-the-real-secret-at-all")])
    refused(codec, impostor.token("5-77"))


def _alter(token, part, value):
    parts = token.split(".")
    parts[part] = value
    return ".".join(parts)


def _flip(text, i):
    ch = text[i]
    return text[:i] + ("A" if ch != "A" else "B") + text[i + 1 :]


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda t: _alter(t, 2, "5-78"), id="other-seq"),
        pytest.param(lambda t: _alter(t, 2, "6-77"), id="other-campaign"),
        pytest.param(lambda t: _alter(t, 2, "5-77 "), id="id-with-space"),
        pytest.param(lambda t: _alter(t, 3, _flip(t.split(".")[3], 0)), id="signature-first-char"),
        pytest.param(lambda t: _alter(t, 3, _flip(t.split(".")[3], -1)), id="signature-last-char"),
        pytest.param(lambda t: _alter(t, 3, ""), id="no-signature"),
        pytest.param(lambda t: t[:-1], id="truncated-by-one"),
        pytest.param(lambda t: t[: len(t) // 2], id="truncated-to-half"),
        pytest.param(lambda t: t + "A", id="one-char-more"),
        pytest.param(lambda t: t + ".x", id="extra-part"),
        pytest.param(lambda t: _alter(t, 0, "FF2"), id="prefix-FF2"),
        pytest.param(lambda t: _alter(t, 0, "ff1"), id="prefix-lower-case"),
        pytest.param(lambda t: t.replace(".", ":"), id="other-separator"),
        pytest.param(lambda t: "", id="empty"),
    ],
)
def test_forged_or_altered_tokens_are_refused(codec, forge):
    token = codec.token("5-77")
    forged = forge(token)
    assert forged != token
    refused(codec, forged)


@pytest.mark.parametrize(
    "forged", ["FF2.k2.5-77.abc", "XX.k2.5-77.abc", "FF1.k2.5-77", "FF1.k2.5-77.a.b", "k2.5-77.abc"]
)
def test_verify_token_refuses_wrong_shapes(codec, forged):
    refused(codec, forged, how="verify_token")


def test_token_naming_no_coupon_is_refused_even_when_signed(codec):
    # A signature over a malformed coupon id (e.g. a leading zero) still names nothing.
    refused(codec, codec.token("05-77"))


# -- short codes -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "coupon_id",
    [
        "1-1",
        "1-2",
        "31-1",
        "32-1",
        "12-345",
        "1-1048575",
        "1-1048576",
        "1-99999999",
        "123456-7",
        "999999999999-999999999999",
    ],
)
def test_short_code_round_trip(codec, coupon_id):
    code = codec.short_code(coupon_id)
    assert codec.verify_short_code(code).coupon_id == coupon_id
    assert codec.verify(code).coupon_id == coupon_id
    raw = normalize_short_code(code)
    assert set(raw) <= set(ALPHABET)
    assert len(raw) >= 10
    groups = code.split("-")
    assert all(len(g) == 4 for g in groups[:-1]) and 1 <= len(groups[-1]) <= 4


def test_short_codes_are_unique_and_use_only_the_alphabet(codec):
    codes = {}
    for campaign in (1, 2, 31, 32, 1234):
        for seq in range(1, 20_001):
            code = codec.short_code(f"{campaign}-{seq}")
            assert code not in codes, (code, codes.get(code), (campaign, seq))
            codes[code] = (campaign, seq)
    assert len(codes) == 100_000
    alphabet = set(ALPHABET)
    assert "0" not in alphabet and "O" not in alphabet and "1" not in alphabet
    assert "I" not in alphabet
    for code in codes:
        assert set(code.replace("-", "")) <= alphabet
    # Spot-check that what is unique also decodes back to where it came from.
    for code, (campaign, seq) in list(codes.items())[::997]:
        assert codec.verify_short_code(code) == CouponRef(str(campaign), seq)


@pytest.mark.parametrize(
    "typed",
    [
        lambda c: c.lower(),
        lambda c: c.replace("-", ""),
        lambda c: c.replace("-", " "),
        lambda c: " " + c.replace("-", "  ").lower() + " ",
        lambda c: "-".join(c.replace("-", "")),  # a hyphen after every character
        lambda c: c.replace("-", "\t"),
        lambda c: c.replace("-", "."),
    ],
)
def test_typed_short_codes_are_normalised(codec, typed):
    code = codec.short_code("42-1057")
    assert codec.verify(typed(code)) == CouponRef("42", 1057)


@pytest.mark.parametrize("coupon_id", ["1-1", "42-1057", "777-123456", "99999-5"])
def test_every_single_character_substitution_is_rejected(codec, coupon_id):
    raw = normalize_short_code(codec.short_code(coupon_id))
    tried = 0
    for i, original in enumerate(raw):
        for ch in ALPHABET:
            if ch == original:
                continue
            typo = raw[:i] + ch + raw[i + 1 :]
            error = refused(codec, typo)
            # The check character alone catches every single substitution.
            assert "typo" in error.message, (typo, error.message)
            tried += 1
    assert tried == 31 * len(raw)


def test_adjacent_transpositions_are_rejected(codec):
    swaps = by_check_char = 0
    for seq in range(1, 301):
        raw = normalize_short_code(codec.short_code(f"{seq % 7 + 1}-{seq * 7919}"))
        for i in range(len(raw) - 1):
            if raw[i] == raw[i + 1]:
                continue
            swapped = raw[:i] + raw[i + 1] + raw[i] + raw[i + 2 :]
            error = refused(codec, swapped)
            swaps += 1
            by_check_char += "typo" in error.message
    assert swaps > 2_000
    # Luhn mod 32 misses a few swaps (e.g. of '2' and 'Z'); the MAC catches those.
    assert by_check_char / swaps > 0.95


def test_short_code_made_with_a_key_not_in_the_list_is_refused(codec):
    stranger = CouponCodec([("k9", b"some-other-key-of-16+")])
    code = stranger.short_code("42-1057")
    assert stranger.verify(code) == CouponRef("42", 1057)
    error = refused(codec, code)
    assert error.message == NO_SUCH_CODE


def test_short_code_of_the_old_key_still_verifies_after_rotation(codec):
    old = CouponCodec([OLD_KEY]).short_code("42-1057")
    assert codec.verify(old) == CouponRef("42", 1057)
    assert codec.short_code("42-1057") == CouponCodec([NEW_KEY]).short_code("42-1057")
    assert CouponCodec([NEW_KEY]).short_code("42-1057") != old


@pytest.mark.parametrize(
    "code",
    [
        "",
        "   ",
        "ABCD",
        "2222-2222-2",
        "OOOO-OOOO-OO",
        "1111-1111-11",
        "ÄBCD-EFGH-JK",
        "3322-23TN-X",
    ],
)
def test_malformed_short_codes_are_refused(codec, code):
    refused(codec, code)


# -- key configuration -------------------------------------------------------------------------
def test_parse_keys_keeps_the_order():
    assert parse_keys(" new:0123456789abcdef , old:fedcba9876543210,") == [
        ("new", b"0123456789abcdef"),
        ("old", b"fedcba9876543210"),
    ]


@pytest.mark.parametrize(
    "spec",
    [
        "",
        " , ",
        "k1",
        "k1:short",
        "k.1:0123456789abcdef",
        "k1:0123456789abcdef,k1:fedcba9876543210",
        "a-very-long-key-id-x:0123456789abcdef",
    ],
)
def test_parse_keys_refuses_bad_specs(spec):
    with pytest.raises(ValueError):
        parse_keys(spec)


def test_a_codec_needs_a_key():
    with pytest.raises(ValueError):
        CouponCodec([])


# -- non-ASCII input and what a wrong guess learns ---------------------------------------------
@pytest.mark.parametrize("how", ["verify", "verify_token", "verify_short_code"])
@pytest.mark.parametrize(
    "mangle",
    [
        lambda token, code: token[:-2] + "é",  # a non-ASCII signature (was a TypeError: 500)
        lambda token, code: token.replace("FF1.", "FF1.\u00ff", 1),
        lambda token, code: code[:-1] + "\u017f",  # "ſ".upper() == "S", a letter of the alphabet
        lambda token, code: "\u0665" + code,  # an Arabic-Indic digit
        lambda token, code: code.replace("-", "\u00a0"),
    ],
)
def test_non_ascii_codes_are_invalid_not_errors(codec, how, mangle):
    token, code = codec.token("42-1057"), codec.short_code("42-1057")
    refused(codec, mangle(token, code), how)


def test_a_right_mac_on_a_malformed_body_answers_like_a_wrong_one(codec):
    """The structure is checked before the MAC: only the MAC tells 'no such code'."""
    secret = KEYS[0][1]
    from promotions.codes import _luhn_mod32, _mac_chars

    body = ALPHABET[0] + "3" + "2222"  # campaign length 0: not a coupon code at all
    answers = set()
    for mac in (_mac_chars(secret, body), "ZZZ" if _mac_chars(secret, body) != "ZZZ" else "YYY"):
        raw = body + mac
        raw += ALPHABET[_luhn_mod32(raw)]
        answers.add(refused(codec, raw).message)
    assert answers == {"not a coupon code"}


@pytest.mark.parametrize("code", ["FF1.k2.1-1.sig\u00e9", "2222-2222-2\u00e9", "\u017f" * 10])
def test_a_non_ascii_code_at_the_till_is_a_422_envelope(client, auth, code):
    from .helpers import assert_error

    till, _ = auth.headers("staff", store_id="acme-1")
    for path, extra in (
        ("/api/redemptions/preview", {"basket_fen": 100}),
        ("/api/redemptions", {"basket_fen": 100, "order_ref": "A-1"}),
        ("/api/redemptions/void", {}),
    ):
        response = client.post(path, json={"code": code, **extra}, headers=till)
        assert_error(response, 422, "INVALID_CODE", "code")


# -- guessing short codes at the till: one throttled path, answers that reveal nothing ---------
def _forged(code: str) -> str:
    """The same coupon's body with another MAC (a wrong guess of the same shape)."""
    from promotions.codes import _luhn_mod32

    raw = normalize_short_code(code)
    body, mac = raw[:-4], raw[-4:-1]
    other = "".join(ALPHABET[(ALPHABET.index(ch) + 1) % 32] for ch in mac)
    return body + other + ALPHABET[_luhn_mod32(body + other)]


def test_a_staff_member_cannot_tell_a_foreign_code_from_a_wrong_one(make_app):
    """Void answered 403/409 for a real code and 422 for a wrong MAC, without counting: a staff
    account found a shopper's code by guessing. Now every path answers alike and counts."""
    from .conftest import AuthActions
    from .test_promo_api import Promo

    app = make_app(COUPON_INVALID_MAX=4)
    client = app.test_client()
    auth = AuthActions(app, client)
    promo = Promo(client, auth)
    headers, user = auth.headers("shopper")
    redeemed_id = promo.issue(user["id"], "k1").get_json()["coupon"]["id"]
    fresh_id = promo.issue(user["id"], "k2").get_json()["coupon"]["id"]
    redeemed = client.get(f"/api/wallet/{redeemed_id}", headers=headers).get_json()["code"]
    fresh = client.get(f"/api/wallet/{fresh_id}", headers=headers).get_json()["code"]
    here, _ = auth.headers("staff", store_id="acme-1")
    assert (
        client.post(
            "/api/redemptions",
            headers=here,
            json={"code": redeemed, "basket_fen": 20_000, "order_ref": "A-1"},
        ).status_code
        == 201
    )

    def answer(path, code, who, **extra):
        response = client.post(path, json={"code": code, **extra}, headers=who)
        return response.status_code, response.get_json()

    elsewhere, _ = auth.headers("staff", store_id="other-1")  # the offer is not for this store
    sister, _ = auth.headers("staff", store_id="acme-2")  # the offer is; the redemption is not
    basket = {"basket_fen": 20_000}
    wrong = answer("/api/redemptions/void", _forged(redeemed), sister)
    assert wrong[0] == 422 and wrong[1]["error"]["code"] == "INVALID_CODE"
    assert answer("/api/redemptions/void", redeemed, sister) == wrong
    assert answer("/api/redemptions/void", fresh, sister) == wrong
    assert answer("/api/redemptions/preview", _forged(fresh), sister, **basket) == wrong
    assert answer("/api/redemptions/void", redeemed, elsewhere) == wrong
    assert answer("/api/redemptions/void", fresh, elsewhere) == wrong
    assert answer("/api/redemptions/preview", fresh, elsewhere, **basket) == wrong
    assert answer("/api/redemptions/preview", _forged(fresh), elsewhere, **basket) == wrong
    # Each counted (4 by each staff member): the void path is throttled like the others.
    status, body = answer("/api/redemptions/void", _forged(fresh), elsewhere)
    assert (status, body["error"]["code"]) == (429, "too_many_invalid_codes")
    status, body = answer("/api/redemptions/void", _forged(fresh), sister)
    assert (status, body["error"]["code"]) == (429, "too_many_invalid_codes")
    # The store that redeemed it still voids it by code.
    assert answer("/api/redemptions/void", redeemed, here)[0] == 200
    assert answer("/api/redemptions/void", fresh, here) == wrong  # not redeemed here
