"""The benchmark's output: figures with their targets, one table on stdout, results.json on disk."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured (or missing) figure. ``ok`` is None where there is no target to meet."""

    section: str
    name: str
    value: float | None
    unit: str = ""
    target: str = ""
    ok: bool | None = None
    note: str = ""
    text: str = ""  # shown instead of the value (informational rows, "not available: ...")

    @classmethod
    def value_of(
        cls,
        section: str,
        name: str,
        value: float,
        unit: str,
        *,
        target: str = "",
        ok: bool | None = None,
        note: str = "",
    ) -> Figure:
        return cls(section, name, float(value), unit, target, ok, note)

    @classmethod
    def info(cls, section: str, name: str, text: str) -> Figure:
        return cls(section, name, None, text=text)

    @classmethod
    def missing(cls, section: str, name: str, why: str, *, target: str = "") -> Figure:
        return cls(section, name, None, target=target, text=why)

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "n/a" if self.target else ""  # not measured: neither met nor missed
        if self.ok is None:
            return ""
        return "PASS" if self.ok else "MISS"

    def shown(self) -> str:
        if self.value is None:
            return self.text
        v = self.value
        if self.unit == "x":
            return f"{v:.2f}x"
        if self.unit in ("%", "MB"):
            return f"{v:,.1f} {self.unit}"
        if abs(v) >= 1000 or v == int(v):
            return f"{v:,.0f} {self.unit}".rstrip()
        return f"{v:.3g} {self.unit}".rstrip()


def render(figures: list[Figure], out: TextIO) -> None:
    """One table: section, figure, value, target, PASS/MISS; notes on the line below."""
    rows = [("section", "figure", "value", "target", "verdict")]
    rows += [(f.section, f.name, f.shown(), f.target, f.verdict) for f in figures]
    # Only numbers size the value column: a long "not available: ..." text overflows its row.
    sized = [rows[0]] + [r for r, f in zip(rows[1:], figures, strict=True) if f.value is not None]
    widths = [max(len(r[i]) for r in (sized if i == 2 else rows)) for i in range(4)]
    for n, row in enumerate(rows):
        line = "  ".join(row[i].ljust(widths[i]) for i in range(2))
        value = row[2].ljust(widths[2])
        tail = "  ".join([row[3].ljust(widths[3]), row[4]]).rstrip()
        line += "  " + value + ("  " + tail if tail else "")
        out.write(line.rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in [*widths, 7]) + "\n")
        elif figures[n - 1].note:
            out.write(" " * (widths[0] + 4) + "(" + figures[n - 1].note + ")\n")
    out.flush()


def save(figures: list[Figure], path: Path, params: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(),
        "params": params,
        "figures": [asdict(f) | {"verdict": f.verdict} for f in figures],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
