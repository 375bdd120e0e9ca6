"""Bytes -> text: binary sniffing and encoding detection that never raises on bad bytes."""

from __future__ import annotations

import unicodedata

_SNIFF = 8192
# Control bytes that do not occur in text (NUL aside, which is checked first); tab, LF, FF, CR and ESC are fine.
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))


def looks_binary(data: bytes) -> bool:
    """NUL bytes, or many control bytes, in the first 8 KiB (UTF-16 with a BOM is text)."""
    head = data[:_SNIFF]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    if b"\x00" in head:
        return True
    if not head:
        return False
    controls = len(head) - len(head.translate(None, _CONTROL))
    return controls > len(head) // 10


def decode(data: bytes, source: str, warnings: list[str]) -> str:
    """Decode ``data``; append a warning to ``warnings`` whenever the result is a guess or lossy.

    UTF-8 (with or without BOM) and UTF-16 with a BOM are exact. Anything else goes to
    charset-normalizer; if it finds no plausible encoding, invalid bytes become U+FFFD.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        if _is_utf16(data):
            return data.decode("utf-16", errors="replace")
        data = data[2:]
        rest = _decode_rest(data, source, [])
        warnings.append(f"{source}: starts with a UTF-16 byte-order mark but is not UTF-16; decoded as {rest[1]}")
        return rest[0]
    return _decode_rest(data, source, warnings)[0]


def _is_utf16(data: bytes) -> bool:
    """Whether bytes that start with a UTF-16 BOM are UTF-16: they decode strictly, and some code
    unit has a zero byte (every line end, space, digit and Latin letter has one). Without one, only
    a short text that is not UTF-8 is taken as UTF-16 (a few CJK characters). A BOM before UTF-8
    or Latin-1 text would otherwise turn "hello" into CJK-looking garbage silently."""
    try:
        text = data.decode("utf-16")
    except UnicodeDecodeError:
        return False
    body = data[2:]
    if b"\x00" in body:
        return True
    if len(body) >= 64 or any(unicodedata.category(c) in ("Cn", "Co") for c in text):
        return False  # unassigned or private-use characters: bytes of another encoding read in pairs
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _decode_rest(data: bytes, source: str, warnings: list[str]) -> tuple[str, str]:
    """(text, the encoding used) for bytes without a UTF-16 BOM; see ``decode``."""
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    guess = _detect(data)
    if guess is not None:
        warnings.append(f"{source}: not valid UTF-8; decoded as {guess} (detected)")
        return data.decode(guess, errors="replace"), f"{guess} (detected)"
    warnings.append(f"{source}: not valid UTF-8 (first bad byte at offset {first_bad}); invalid bytes replaced")
    return data.decode("utf-8-sig", errors="replace"), "UTF-8 with invalid bytes replaced"


def _detect(data: bytes) -> str | None:
    """charset-normalizer's guess, preferring cp1252 among equally good single-byte candidates.

    On short Western European text it often ties cp1250, cp1252 and cp1257 and picks the first
    (measured: French text in cp1252 came out as "coűte", "élčves"); cp1252 is by far the most
    common legacy encoding, so a tie goes to it.
    """
    from charset_normalizer import from_bytes  # lazy: only non-UTF-8 input pays for the import

    results = from_bytes(data)
    best = results.best()
    if best is None or best.encoding in ("utf_8", "ascii"):
        return None
    if "cp1252" in best.could_be_from_charset:
        return "cp1252"
    for match in results:
        if "cp1252" in match.could_be_from_charset and match.chaos <= best.chaos and match.coherence >= best.coherence:
            return "cp1252"
    return str(best.encoding)


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
