"""How a quote and a source text are compared: both normalised the same way, character by character.

- Unicode NFKC (ligatures such as "ﬁ" become "fi"), then case-folded: models often capitalise a
  quote taken from mid-sentence, and case carries no evidence;
- curly quotes and apostrophes become straight ones; en/em dashes and minus signs become "-";
- any run of whitespace (line breaks, PDF column gaps) becomes one space;
- a quote's own wrapping (surrounding quote marks, leading/trailing "..." or "…", spaces) is ignored.

Used by ``extract`` for evidence (:mod:`dsv2cli.extract.verify`) and by ``ask`` for quotes next to
a citation (:mod:`dsv2cli.citations`); it lives here, below both, so either can use it.
"""

from __future__ import annotations

import unicodedata

MIN_QUOTE_CHARS = 4

_TRANSLATE = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
        "\u00a0": " ", "\u00ad": "",  # no-break space; soft hyphen (invisible)
    }
)  # fmt: skip
_WRAPPING = " \"'`.…"


def _norm_char(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch).translate(_TRANSLATE).casefold()


def normalise(text: str) -> tuple[str, list[int]]:
    """The normalised text and, for each of its characters, the index of the raw character it came from."""
    out: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        for c in _norm_char(ch):
            if c.isspace():
                if not out or out[-1] == " ":
                    continue
                c = " "
            out.append(c)
            index.append(i)
    while out and out[-1] == " ":
        out.pop()
        index.pop()
    return "".join(out), index


def normalise_quote(quote: str) -> str:
    return normalise(quote)[0].strip(_WRAPPING)
