"""Who the Beijing plugin speaks for."""

from __future__ import annotations

from collections.abc import Sequence

from mra.core import Honour, Jurisdiction, hookimpl

NOTICE = "京人社事业发〔2025〕11号"

JURISDICTION = Jurisdiction(
    code="beijing",
    prefix="bj",
    name_zh="北京市",
    name_en="Beijing",
    regions=("beijing",),
)


@hookimpl
def mra_jurisdiction() -> Jurisdiction:
    return JURISDICTION


@hookimpl
def mra_honours() -> Sequence[Honour]:
    """Beijing decides on its own catalogue only; it honours no other jurisdiction's catalogue."""
    return ()
