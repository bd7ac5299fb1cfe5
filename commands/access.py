"""``mra access``: tokens for the web door (employers, bureau clerks, operators)."""

from __future__ import annotations

from typing import Any

import click

from mra.commands._common import Ctx, emit, json_option, pass_ctx
from mra.core.plugins import load_registry
from mra.services.access import AccessStore, Principal

__all__ = ["COMMANDS", "access"]


def _issued(principal: Principal, token: str, as_json: bool) -> None:
    data = principal.as_dict() | {"token": token}
    scope = principal.credit_code or principal.jurisdiction or ""
    emit(
        data,
        as_json,
        f"{principal.role} {principal.name}{f' ({scope})' if scope else ''}: token id {principal.token_id}\n"
        f"  token (shown once; give it to them, mra keeps only its hash):\n  {token}",
    )


@click.group("access")
def access() -> None:
    """Who may use the web door (`mra serve`): bearer tokens, stored hashed in the state dir."""


@access.command("add-employer")
@click.argument("name")
@click.option("--credit-code", required=True, help="The employer's unified social credit code (18 characters).")
@json_option
@pass_ctx
def add_employer(ctx: Ctx, name: str, credit_code: str, as_json: bool) -> None:
    """A token for an employer: it submits requests and sees only its own."""
    _issued(*AccessStore(ctx.ensure_state_dir()).add_employer(name, credit_code), as_json)


@access.command("add-clerk")
@click.argument("name")
@click.option("--jurisdiction", "-j", required=True, help="The bureau the clerk works for (beijing, tianjin, …).")
@json_option
@pass_ctx
def add_clerk(ctx: Ctx, name: str, jurisdiction: str, as_json: bool) -> None:
    """A token for a bureau clerk: finds holders and reads decisions of one jurisdiction."""
    _issued(*AccessStore(ctx.ensure_state_dir()).add_clerk(name, jurisdiction, load_registry()), as_json)


@access.command("add-operator")
@click.argument("name")
@json_option
@pass_ctx
def add_operator(ctx: Ctx, name: str, as_json: bool) -> None:
    """A token for an operator: counts and lag."""
    _issued(*AccessStore(ctx.ensure_state_dir()).add_operator(name), as_json)


@access.command("list")
@json_option
@pass_ctx
def list_(ctx: Ctx, as_json: bool) -> None:
    """Every issued token (ids and holders, never the tokens)."""
    rows = [p.as_dict() for p in AccessStore(ctx.state_dir).principals()]

    def text(d: list[dict[str, Any]]) -> str:
        if not d:
            return "no tokens issued (`mra access add-employer NAME --credit-code CODE`)"
        return "\n".join(
            f"{r['token_id']}  {r['role']:<9} {r['name']}  {r.get('credit_code') or r.get('jurisdiction') or ''}"
            for r in d
        )

    emit(rows, as_json, text)


@access.command("remove")
@click.argument("token_id")
@json_option
@pass_ctx
def remove(ctx: Ctx, token_id: str, as_json: bool) -> None:
    """Revoke a token at once."""
    gone = AccessStore(ctx.state_dir).remove(token_id)
    emit(gone.as_dict(), as_json, f"token {gone.token_id} of {gone.role} {gone.name} removed")


COMMANDS: list[click.Command] = [access]
