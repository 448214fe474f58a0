"""Reading delimited and JSON-lines files row by row, with errors that name the file and line."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from tis_ray.errors import DataError


def read_rows(path: str | Path, delimiter: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, {column: value}) for each data row of a TSV, CSV or JSONL file.

    TSV files are split on tabs with no quote processing (MNLI text holds stray quotes); CSV files use
    standard quoting. Raises DataError for a missing or empty file or a row of the wrong width.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        yield from _read(path, delimiter)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None


def _read(path: Path, delimiter: str | None) -> Iterator[tuple[int, dict[str, str]]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        yield from _read_jsonl(path)
        return
    delimiter = delimiter or ("," if suffix == ".csv" else "\t")
    with path.open(encoding="utf-8", newline="") as handle:
        lines = csv.reader(handle, delimiter=",") if delimiter == "," else (
            line.rstrip("\r\n").split("\t") for line in handle)
        header = next(lines, None)
        if not header or header == [""]:
            raise DataError(f"{path}: empty file (no header line)")
        n_rows = 0
        for lineno, fields in enumerate(lines, start=2):
            if fields == [""] or not fields:
                continue
            if len(fields) != len(header):
                raise DataError(f"{path}:{lineno}: expected {len(header)} fields as in the header, "
                                f"found {len(fields)}")
            n_rows += 1
            yield lineno, dict(zip(header, fields, strict=True))
    if n_rows == 0:
        raise DataError(f"{path}: no data rows after the header")


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    n_rows = 0
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object per line")
            n_rows += 1
            yield lineno, row
    if n_rows == 0:
        raise DataError(f"{path}: empty file (no JSON lines)")


def require_columns(path: str | Path, lineno: int, row: dict, columns: list[str]) -> None:
    """Raise DataError naming the file, line and first column of `columns` that `row` lacks."""
    for column in columns:
        if column not in row:
            raise DataError(f"{path}:{lineno}: missing column {column!r} (found: {', '.join(map(repr, row))})")


def parse_label(value, names: tuple[str, ...], where: str) -> int:
    """Return the label id of `value` given as a name in `names` or as an id; DataError otherwise."""
    text = str(value).strip()
    if text in names:
        return names.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
        return int(text)
    raise DataError(f"{where}: unknown label {text!r}; expected one of {', '.join(names)} "
                    f"or 0-{len(names) - 1}")
