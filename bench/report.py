"""Output shared by the benchmarks: tables a person can paste into a note."""

from __future__ import annotations


def table(headers: list[str], rows: list[list], right: set[int] | None = None) -> str:
    """A markdown pipe table; columns in right are right-aligned."""
    right = right if right is not None else set(range(1, len(headers)))
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        padded = [
            v.rjust(widths[i]) if i in right else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        ("-" * (widths[i] - 1) + ":") if i in right else "-" * widths[i]
        for i in range(len(headers))
    ]
    return "\n".join([line(headers), "| " + " | ".join(rule) + " |", *map(line, cells)])
