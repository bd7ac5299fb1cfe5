"""``mra plugins``: which jurisdiction plugins are loaded (and which were refused), and a scaffold for a new one."""

from __future__ import annotations

import keyword
import re
import shlex
import sys
from importlib import resources
from importlib.metadata import entry_points
from importlib.resources.abc import Traversable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import click

from mra.commands._common import Ctx, emit, json_option, pass_ctx
from mra.commands._output import _
from mra.core.errors import MraError, ValidationFailed
from mra.core.hookspecs import PluginConfig
from mra.core.plugins import ENTRY_POINT_GROUP, Registry, load_registry

__all__ = ["COMMANDS", "describe", "plugins", "render_scaffold"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PREFIX = re.compile(r"^[a-z]{2,4}$")
_TEMPLATE = "jurisdiction"


def describe(registry: Registry) -> dict[str, Any]:
    """What ``mra plugins list --json`` prints: every loaded plugin, then every refused one."""
    loaded: list[dict[str, Any]] = []
    for info in registry.plugins():
        j = registry.jurisdiction(info.name)
        honours = registry.honours(info.name)
        available = {(e.jurisdiction, e.catalogue) for e in registry.honoured_catalogues(info.name)}
        loaded.append(
            {
                "name": info.name,
                "version": info.version,
                "distribution": info.distribution,
                "jurisdiction": j.model_dump(mode="json"),
                "hooks": list(info.hooks),
                "catalogues": [
                    {"catalogue": e.catalogue, "edition": e.edition, "document": e.document, "entries": len(e.entries)}
                    for e in registry.catalogues(info.name)
                ],
                "honours": [
                    {
                        "catalogue": h.catalogue,
                        "jurisdiction": h.jurisdiction,
                        "basis": h.basis,
                        "loaded": (h.jurisdiction, h.catalogue) in available,
                    }
                    for h in honours
                ],
                "benefit_codes": [r.code for r in registry.rules(info.name)],
                "settings": [s.key for s in registry.policy_settings(info.name)],
                "load_ms": info.load_ms,
                "validate_ms": info.validate_ms,
            }
        )
    refused = [{"name": f.name, "reasons": list(f.reasons)} for f in registry.failures]
    return {"plugins": loaded, "refused": refused}


def _text(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for p in data["plugins"]:
        j = p["jurisdiction"]
        source = f"{p['distribution']} {p['version']}".strip() or "not installed (registered directly)"
        lines.append(f"{p['name']}  {j['name_zh']} {j['name_en']}  prefix {j['prefix']}  [{source}]")
        lines.append(f"  regions:    {', '.join(j['regions'])}")
        lines.append(f"  hooks:      {', '.join(h.removeprefix('mra_') for h in p['hooks'])}")
        published = [f"{c['catalogue']} {c['edition']} ({c['entries']} entries)" for c in p["catalogues"]]
        lines.append(f"  publishes:  {'; '.join(published) or '-'}")
        honoured = [
            f"{h['catalogue']} of {h['jurisdiction']} on {h['basis']}{'' if h['loaded'] else ' (not loaded)'}"
            for h in p["honours"]
        ]
        lines.append(f"  honours:    {'; '.join(honoured) or '-'}")
        lines.append(f"  benefits:   {', '.join(p['benefit_codes']) or '-'}")
        lines.append(f"  settings:   {', '.join(p['settings']) or '-'}")
        lines.append(f"  loaded in {p['load_ms']:.1f} ms (checks {p['validate_ms']:.1f} ms)")
    if not data["plugins"]:
        lines.append("no jurisdiction plugin is loaded")
    return "\n".join(lines)


@click.group("plugins")
def plugins() -> None:
    """Jurisdiction plugins: what is loaded, what was refused and why, and a scaffold for a new one."""


@plugins.command("list")
@json_option
@pass_ctx
def list_(ctx: Ctx, as_json: bool) -> None:
    """List loaded plugins: version, hooks, catalogues published and honoured, benefit codes.

    Refused plugins are listed with their reasons (on stderr in text mode). MRA_PLUGINS=a,b loads only
    those.
    """
    registry = load_registry(config=PluginConfig(state_dir=ctx.state_dir))
    data = describe(registry)
    emit(data, as_json, _text)
    if not as_json:
        for f in registry.failures:
            click.echo(f.message(), err=True)


# --- scaffold -------------------------------------------------------------------------------------------------


def _template_root() -> Traversable:
    return resources.files("mra.core.testing").joinpath("templates", _TEMPLATE)


def _walk(node: Traversable, rel: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Traversable]]:
    out: list[tuple[tuple[str, ...], Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        if child.is_dir():
            out += _walk(child, (*rel, child.name))
        elif child.name.endswith(".tmpl"):
            out.append(((*rel, child.name.removesuffix(".tmpl")), child))
    return out


def render_scaffold(values: dict[str, str]) -> dict[str, str]:
    """The scaffold's files, relative path to text, with ``{{key}}`` replaced from ``values``."""
    files: dict[str, str] = {}
    for rel, node in _walk(_template_root()):
        parts = (values["package"], *rel[1:]) if rel[0] == "package" else rel
        path = "/".join(parts)
        text = node.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        if "{{" in text:
            raise MraError(f"template {'/'.join(rel)} has an unknown placeholder near {text[text.index('{{'):][:30]!r}")
        files[path] = text
    return files


def _check_name(name: str, prefix: str | None) -> str:
    """Refuse a name or prefix that would not load, and return the prefix to use."""
    problems: list[str] = []
    if not _NAME.match(name) or keyword.iskeyword(name):
        problems.append(f"NAME must be a lower-case Python identifier such as 'shandong', got {name!r}")
    installed = {e.name for e in entry_points(group=ENTRY_POINT_GROUP)}
    if name in installed:
        problems.append(f"a plugin named {name!r} is already installed")
    elif _NAME.match(name) and find_spec(f"mra_{name}") is not None:
        problems.append(f"a package named mra_{name} is already importable")
    if prefix is None:
        letters = "".join(c for c in name if c.isalpha())
        prefix = letters[:2]
    if not _PREFIX.match(prefix):
        problems.append(f"the prefix must be 2-4 lower-case letters (--prefix), got {prefix!r}")
    else:
        used = {j.prefix: code for code, j in load_registry().jurisdictions.items()}
        if prefix in used:
            problems.append(f"the prefix {prefix!r} is used by {used[prefix]!r}: choose another with --prefix")
    if problems:
        raise ValidationFailed(f"cannot scaffold plugin {name!r}", problems)
    return prefix


@plugins.command("new")
@click.argument("name")
@click.option("--path", "path", type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write the package to (default: ./mra-NAME). Must not exist or be empty.")
@click.option("--prefix", help="Benefit-code and setting prefix, 2-4 letters (default: NAME's first two letters).")
@click.option("--name-zh", help="The jurisdiction's Chinese name (default: NAME).")
@click.option("--name-en", help="The jurisdiction's English name (default: NAME, capitalised).")
@json_option
def new(name: str, path: Path | None, prefix: str | None, name_zh: str | None, name_en: str | None,
        as_json: bool) -> None:
    """Write a ready-to-install plugin package for jurisdiction NAME, with tests that use the conformance kit.

    Install it with `pip install -e DIR`; `mra plugins list` then shows it, and `pytest` in DIR passes.
    """
    prefix = _check_name(name, prefix)
    target = path or Path.cwd() / f"mra-{name.replace('_', '-')}"
    if target.exists() and any(target.iterdir()):
        raise MraError(f"{target} exists and is not empty; choose another --path")
    english = name_en or name.replace("_", " ").title()
    values = {
        "name": name,
        "package": f"mra_{name}",
        "distribution": f"mra-{name.replace('_', '-')}",
        "prefix": prefix,
        "id_prefix": f"{prefix.upper()}EX",
        "name_zh": name_zh or english,
        "name_en": english,
    }
    files = render_scaffold(values)
    for rel, text in files.items():
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    steps = _next_steps(target)
    summary = {"name": name, "prefix": prefix, "path": str(target), "files": sorted(files), "next": steps}
    emit(summary, as_json, lambda s: "\n".join([
        _("wrote plugin {name!r} (prefix {prefix!r}) to {target}:").format(name=name, prefix=prefix, target=target),
        *(f"  {f}" for f in s["files"]),
        _("next (with the Python that runs mra, whatever is on PATH):"),
        *(f"  {step}" for step in steps),
    ]))


def _next_steps(target: Path) -> list[str]:
    """Install, list and test the new package with the interpreter running mra: a bare ``pip``, ``mra`` or
    ``pytest`` may be another Python's, or not on PATH at all."""
    python = shlex.quote(sys.executable)
    script = Path(sys.executable).parent / "mra"
    mra = shlex.quote(str(script)) if script.exists() else f"{python} -m mra.cli"
    where = shlex.quote(str(target.resolve()))
    return [f"{python} -m pip install -e {where}", f"{mra} plugins list", f"cd {where} && {python} -m pytest"]


COMMANDS: list[click.Command] = [plugins]
