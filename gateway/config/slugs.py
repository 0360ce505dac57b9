"""The canonical spelling of studio and game names.

Game ids are `slug(studio):slug(name)`, and the config's `studio_aliases` are written in the
same spelling, so both use this one function.
"""

from __future__ import annotations

import re
import unicodedata

_NON_SLUG = re.compile(r"[^a-z0-9]+")
_APOSTROPHES = re.compile(r"['\u2019`]")


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    without_apostrophes = _APOSTROPHES.sub("", ascii_text.lower())
    return _NON_SLUG.sub("-", without_apostrophes).strip("-")
