"""What the benchmarks print: package versions and plain-text tables."""

import platform
from importlib import metadata


def versions(*names: str, extra: tuple[str, ...] = ()) -> str:
    """``Python x.y.z, <extra>, <name> <version>...`` for the packages that are installed."""
    found = [f"Python {platform.python_version()}", *extra]
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def print_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for row in (headers, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
