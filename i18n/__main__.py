"""``python -m mra.i18n update|check``: keep the catalogues whole (see :mod:`mra.i18n.tools`)."""

from __future__ import annotations

import sys

from mra.i18n.tools import missing, update


def main(argv: list[str]) -> int:
    if argv[:1] == ["update"]:
        for lang, n in update().items():
            print(f"{lang}: {n} new messages")
        return 0
    if argv[:1] == ["check"]:
        gaps = missing("zh_CN")
        for message in gaps:
            print(f"untranslated: {message!r}")
        print(f"zh_CN: {len(gaps)} untranslated")
        return 1 if gaps else 0
    print("usage: python -m mra.i18n update|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
