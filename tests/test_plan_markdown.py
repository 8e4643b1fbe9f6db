"""`plan --format markdown`: every link is one table row, whatever its description holds."""

from __future__ import annotations

from linked_apps.cli.plan import render_markdown
from tests._project import plan

from .conftest import config, link, self_hosted


def test_descriptions_with_pipes_and_newlines_stay_in_their_cell():
    result = plan(config({"a": self_hosted("a.acme.com"), "b": self_hosted("b.acme.com")},
                         [link("a", "b", description="reads | writes\nthe ledger")]))
    rows = [line for line in render_markdown(result).splitlines() if line.startswith("| `a`")]
    assert rows == ["| `a` | `b` | `Cf-Access-Token` | `reads \\| writes the ledger` |"]
    # Four cells: the escaped pipe does not split the description.
    assert len(rows[0].replace("\\|", "").strip("|").split("|")) == 4
