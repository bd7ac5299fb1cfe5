"""Every hook of the contract is explained: a docstring in hookspecs, a section in docs/plugins.md."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from mra.core import hookspecs

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def hookspec_names() -> list[str]:
    return sorted(
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if getattr(fn, f"{hookspecs.PROJECT}_spec", None) is not None
    )


def documented() -> set[str]:
    return set(re.findall(r"^### (mra_\w+)\s*$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE))


def test_the_contract_has_the_hooks_mra_calls() -> None:
    assert {"mra_configure", "mra_jurisdiction", "mra_catalogues", "mra_decide"} <= set(hookspec_names())


def test_every_hookspec_has_a_docstring() -> None:
    missing = [n for n in hookspec_names() if len(inspect.getdoc(getattr(hookspecs, n)) or "") < 40]
    assert not missing, f"hookspecs without a docstring: {missing}"


def test_every_hookspec_is_documented_and_no_other() -> None:
    specs = set(hookspec_names())
    assert specs - documented() == set(), "hooks missing from docs/plugins.md"
    assert documented() - specs == set(), "docs/plugins.md documents hooks that do not exist"


def test_documented_signatures_match_the_specs() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in hookspec_names():
        params = list(inspect.signature(getattr(hookspecs, name)).parameters)
        section = text.split(f"### {name}", 1)[1].split("\n### ", 1)[0]
        call = re.search(rf"`{name}\(([^)]*)\)", section)
        assert call, f"{name}: the section does not show the call"
        shown = [p.split(":")[0].strip() for p in call.group(1).split(",") if p.strip()]
        assert shown == params, f"{name}: documented {shown}, spec has {params}"


def test_historic_and_firstresult_are_said() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in hookspec_names():
        opts = getattr(getattr(hookspecs, name), f"{hookspecs.PROJECT}_spec")
        first_paragraph = text.split(f"### {name}", 1)[1].strip().split("\n\n")[0]
        for flag in ("historic", "firstresult"):
            said = f"— {flag}." in first_paragraph
            assert said == bool(opts.get(flag)), f"{name}: docs and spec disagree on {flag}"
