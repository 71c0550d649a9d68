"""Coupon codes that cannot be forged: a signed token for the QR, a short code for the till.

The token is `FF1.<key id>.<coupon id>.<signature>`, the signature an HMAC-SHA256 (truncated to
128 bits, base64url) of everything before it with the key named by the key id. Several keys may
be configured: the first signs, all verify, so a key can be rotated without voiding coupons in
wallets.

The short code is for typing at the till when a QR will not scan: 10+ characters of an alphabet
without 0/O and 1/I, grouped by four. It packs the campaign id and the coupon's sequence
number (so it is unique by construction, without an index), three characters of MAC (so a
guessed code fails unless ~1 in 32,768 tries are spent, and invalid codes are throttled), and a
Luhn mod 32 check character that catches any single typo and most swaps before Redis is asked.

Answers that depend on the secret (a wrong MAC or signature) all carry the same message,
`NO_SUCH_CODE`, which the till also gets for a well-signed code of a coupon that does not exist
or that it may not act on (see `Coupons` and README "Security"); answers about the code's
public structure (length, alphabet, check character) come first and may be precise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from core.errors import DomainError, NotFound

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
TOKEN_PREFIX = "FF1"
COUPON_ID = re.compile(r"^([1-9][0-9]{0,11})-([1-9][0-9]{0,11})$")
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
MAC_CHARS = 3
SEQ_MIN_CHARS = 4
NO_SUCH_CODE = "no coupon with this code can be used here"


class InvalidCode(DomainError):
    """A code that does not parse, has a bad check character or a bad signature."""

    code = "INVALID_CODE"
    status = 422


def no_such_code() -> InvalidCode:
    """Return the one answer for a code that names no coupon the caller may use."""
    return InvalidCode(NO_SUCH_CODE, field="code")


@dataclass(frozen=True)
class CouponRef:
    """What a verified code points at."""

    campaign_id: str
    seq: int

    @property
    def coupon_id(self) -> str:
        """Return the coupon id, '<campaign>-<seq>'."""
        return f"{self.campaign_id}-{self.seq}"


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    """Parse 'kid:secret,kid2:secret2' (first = signing key) into (key id, secret) pairs."""
    pairs = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, secret = part.partition(":")
        if not sep or not KEY_ID.match(kid) or len(secret) < 16:
            raise ValueError(
                "COUPON_SIGNING_KEYS must be 'kid:secret,...' with key ids of "
                "1-16 letters/digits and secrets of at least 16 characters"
            )
        pairs.append((kid, secret.encode()))
    if not pairs:
        raise ValueError("COUPON_SIGNING_KEYS holds no key")
    if len({kid for kid, _ in pairs}) != len(pairs):
        raise ValueError("COUPON_SIGNING_KEYS repeats a key id")
    return pairs


def split_coupon_id(coupon_id: str, field: str = "coupon_id") -> CouponRef:
    """Split '<campaign>-<seq>' or raise a not-found error naming the field."""
    match = COUPON_ID.match(coupon_id or "")
    if not match:
        raise NotFound("no such coupon", code="not_found", field=field)
    return CouponRef(match.group(1), int(match.group(2)))


class CouponCodec:
    """Sign and verify coupon tokens and short codes with rotating keys."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.keys = list(keys)
        self._by_id = dict(self.keys)

    # -- signed token (QR) ---------------------------------------------------------------
    def token(self, coupon_id: str) -> str:
        """Return the signed token of a coupon, signed with the current key."""
        kid, secret = self.keys[0]
        head = f"{TOKEN_PREFIX}.{kid}.{coupon_id}"
        return f"{head}.{_sign(secret, head)}"

    def verify_token(self, token: str) -> CouponRef:
        """Return the coupon a token names, or raise InvalidCode."""
        parts = token.split(".") if token.isascii() else []
        if len(parts) != 4 or parts[0] != TOKEN_PREFIX:
            raise InvalidCode("not a Footfall coupon token", field="code")
        _, kid, coupon_id, signature = parts
        secret = self._by_id.get(kid)
        if secret is None:
            raise InvalidCode("the token is signed with an unknown key", field="code")
        match = COUPON_ID.match(coupon_id)
        if not match:
            raise InvalidCode("the token names no coupon", field="code")
        expected = _sign(secret, f"{TOKEN_PREFIX}.{kid}.{coupon_id}")
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise no_such_code()
        return CouponRef(match.group(1), int(match.group(2)))

    # -- short code (typed at the till) --------------------------------------------------
    def short_code(self, coupon_id: str) -> str:
        """Return the human-typable code of a coupon, grouped by four characters."""
        ref = split_coupon_id(coupon_id)
        body = self._body(int(ref.campaign_id), ref.seq)
        raw = body + _mac_chars(self.keys[0][1], body)
        raw += ALPHABET[_luhn_mod32(raw)]
        return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))

    def verify_short_code(self, code: str) -> CouponRef:
        """Return the coupon a short code names, or raise InvalidCode."""
        # Refused before upper(), which maps some non-ASCII letters onto ASCII ones ("ſ" -> "S").
        raw = normalize_short_code(code) if code.isascii() else "?"
        if len(raw) < 2 + SEQ_MIN_CHARS + MAC_CHARS + 1 or any(ch not in _INDEX for ch in raw):
            raise InvalidCode("not a coupon code", field="code")
        if _luhn_mod32(raw[:-1]) != _INDEX[raw[-1]]:
            raise InvalidCode("the code has a typo (check character does not match)", field="code")
        body, mac = raw[: -1 - MAC_CHARS], raw[-1 - MAC_CHARS : -1]
        # The structure is checked before the MAC, so that only the MAC decides between "not
        # a coupon code" and NO_SUCH_CODE: the answer never tells a guess its MAC was right.
        campaign_len = _INDEX[body[0]]
        if campaign_len < 1 or len(body) < 1 + campaign_len + SEQ_MIN_CHARS:
            raise InvalidCode("not a coupon code", field="code")
        campaign = _decode(body[1 : 1 + campaign_len])
        seq = _decode(body[1 + campaign_len :])
        if campaign < 1 or seq < 1:
            raise InvalidCode("not a coupon code", field="code")
        if not any(hmac.compare_digest(_mac_chars(secret, body), mac) for _, secret in self.keys):
            raise no_such_code()
        return CouponRef(str(campaign), seq)

    def verify(self, code: str) -> CouponRef:
        """Verify a scanned token or a typed short code."""
        code = (code or "").strip()
        if is_token(code):
            return self.verify_token(code)
        return self.verify_short_code(code)

    @staticmethod
    def _body(campaign: int, seq: int) -> str:
        camp = _encode(campaign, 1)
        return ALPHABET[len(camp)] + camp + _encode(seq, SEQ_MIN_CHARS)


def is_token(code: str) -> bool:
    """Tell whether a code is a signed token (a QR) rather than a typed short code."""
    return (code or "").strip().startswith(TOKEN_PREFIX + ".")


def normalize_short_code(code: str) -> str:
    """Upper-case a typed code and drop separators and spaces."""
    return re.sub(r"[\s\-_.]", "", code or "").upper()


def _sign(secret: bytes, message: str) -> str:
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _mac_chars(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, b"short:" + body.encode(), hashlib.sha256).digest()
    value = int.from_bytes(digest[:4], "big")
    return "".join(ALPHABET[(value >> (5 * i)) & 31] for i in range(MAC_CHARS))


def _encode(value: int, min_chars: int) -> str:
    out = ""
    while value:
        value, digit = divmod(value, 32)
        out = ALPHABET[digit] + out
    return out.rjust(min_chars, ALPHABET[0])


def _decode(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 32 + _INDEX[ch]
    return value


def _luhn_mod32(text: str) -> int:
    """Return the Luhn mod N check character index for text (N = 32)."""
    total, factor = 0, 2
    for ch in reversed(text):
        addend = factor * _INDEX[ch]
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return (32 - total % 32) % 32
