"""The 2025 catalogue (京人社事业发〔2025〕11号 附件1) as data.

The rows live in ``data/beijing-2025.csv``, a file a bureau clerk can read and diff: every column of the notice's
four tables verbatim, plus the issuers split into Chinese and English names, aliases for matching a certificate's
issuer, and the list-四 pointers. What a remark says (experience, title level, provisions) is derived at load time
by :class:`mra.core.catalogue.Deriver`, each value with its words. The notice itself ships beside the CSV
(``data/notice-2025-11.txt``, bytes unchanged) so that a test can hold every row against it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from functools import cache
from importlib import resources

from mra.core import CatalogueEdition, CatalogueList, RepealedEdition, ValidationFailed, hookimpl
from mra.core.catalogue import parse_catalogue_csv

__all__ = [
    "CSV_FILE",
    "DOCUMENT",
    "ID_PREFIX",
    "LISTS",
    "SOURCE_FILE",
    "SOURCE_SHA256",
    "load_edition",
    "mra_catalogues",
    "read_data",
]

DOCUMENT = "京人社事业发〔2025〕11号"
ID_PREFIX = "BJ2025"
CSV_FILE = "beijing-2025.csv"
SOURCE_FILE = "notice-2025-11.txt"
SOURCE_SHA256 = "ca48f3c832daefbe064fcca2306e4aa6d8bf2ab37d887a8829e5d4e40ba6972b"
"""SHA-256 of the notice the CSV was transcribed from; loading refuses a packaged copy that differs."""

_ATTACHMENT = f"{DOCUMENT} 附件1"

LISTS: tuple[CatalogueList, ...] = (
    CatalogueList(
        code="I",
        name_zh="国际职业资格清单",
        name_en="International Professional Qualifications List",
        count=143,
        source=f"{_ATTACHMENT} (一)",
    ),
    CatalogueList(
        code="U",
        name_zh="急需紧缺国际职业资格清单",
        name_en="Urgently Needed International Professional Qualifications List",
        count=9,
        source=f"{_ATTACHMENT} (二)",
    ),
    CatalogueList(
        code="O",
        name_zh="出海职业认证清单",
        name_en="Going-Global Professional Certifications List",
        count=11,
        source=f"{_ATTACHMENT} (三)",
    ),
    CatalogueList(
        code="M",
        name_zh="国际职业资格互认清单",
        name_en="International Professional Qualifications Mutual Recognition List",
        count=7,
        designates=True,
        source=f"{_ATTACHMENT} (四)",
    ),
)
"""The four lists of 附件1 with the counts their headings give (143, 9, 11, 7; "共计 163 项" counts 一–三)."""

REPEALS = (
    # 正文 last paragraph: "本通知自发布之日起实施。…(京人社事业发〔2024〕10 号)同时废止。" Its rows are not in the
    # source, so none are kept.
    RepealedEdition(edition="1.0", document="京人社事业发〔2024〕10号", repealed_on=date(2025, 9, 5)),
)


def read_data(name: str) -> bytes:
    """The bytes of one of this plugin's packaged data files."""
    return resources.files("mra.plugins.beijing").joinpath("data", name).read_bytes()


@cache
def load_edition() -> CatalogueEdition:
    """Load, derive and validate the 2025 edition (once per process: an edition is immutable)."""
    digest = hashlib.sha256(read_data(SOURCE_FILE)).hexdigest()
    if digest != SOURCE_SHA256:
        raise ValidationFailed(
            "the packaged notice is not the document the catalogue was transcribed from",
            [f"{SOURCE_FILE}: sha256 {digest}, expected {SOURCE_SHA256}"],
        )
    entries = parse_catalogue_csv(read_data(CSV_FILE).decode("utf-8"), prefix=ID_PREFIX, lists=LISTS)
    return CatalogueEdition(
        jurisdiction="beijing",
        catalogue="beijing-international",
        edition="2025",
        title="北京市国际职业资格认可目录(2025 年版)",
        document=DOCUMENT,
        effective=date(2025, 9, 5),  # "本通知自发布之日起实施", dated 2025 年 9 月 5 日
        source_sha256=SOURCE_SHA256,
        lists=LISTS,
        entries=entries,
        repeals=REPEALS,
    )


def __getattr__(name: str) -> CatalogueEdition:
    """``EDITION`` is the loaded edition, read on first use rather than at import."""
    if name == "EDITION":
        return load_edition()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def mra_catalogues() -> Sequence[CatalogueEdition]:
    return (load_edition(),)
