"""Read a CSV as the user saved it: encoding and delimiter detected, every cell kept as text.

Typing happens later, column by column (`parsing.py`), because a date format or a decimal
separator can only be judged from a whole column, never from one cell.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

from crm_core.errors import UserError
from crm_core.importing.bulk import gc_paused
from crm_core.importing.contracts import RawTable

DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_BYTES = 64 * 1024
_RAGGED = re.compile(r"Expected \d+ fields in line (?P<line>\d+), saw (?P<saw>\d+)")
_SIGNATURES = {
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx workbook?)",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls workbook",
    b"\x1f\x8b": "a gzip archive",
    b"%PDF": "a PDF document",
}


def delimiter_name(delimiter: str) -> str:
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter))


def read_csv(source: str | Path | bytes, filename: str | None = None) -> RawTable:
    """Read a CSV file (a path) or an upload (bytes). Raises UserError naming the file on bad input."""
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        filename = filename or "upload.csv"
    else:
        path = Path(source)
        filename = filename or path.name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UserError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise UserError(f"{path}: is a directory, not a CSV file") from None
    if not data:
        raise UserError(f"{filename}: the file is empty (0 bytes); expected a header row and data rows")
    text, encoding = decode(data, filename)
    if not text.strip():
        raise UserError(f"{filename}: the file has no header row (only blank lines)")
    delimiter = detect_delimiter(text)
    headers = _read_header(text, delimiter, filename)
    with gc_paused():
        frame = _read_rows(text, delimiter, headers, filename)
    return RawTable(filename=filename, encoding=encoding, delimiter=delimiter, headers=list(frame.columns),
                    row_count=len(frame), frame=frame)


def decode(data: bytes, filename: str) -> tuple[str, str]:
    """Text and encoding name: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252 / Latin-1."""
    for signature, what in _SIGNATURES.items():
        if data.startswith(signature):
            raise UserError(f"{filename}: this is {what}, not a CSV; save it as 'CSV UTF-8' and import that")
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise UserError(f"{filename}: starts with a UTF-8 mark but byte {exc.start} is not UTF-8; "
                            "save it again as 'CSV UTF-8'") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise UserError(f"{filename}: starts with a UTF-16 mark but is not valid UTF-16; save it as 'CSV UTF-8'") from None
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise UserError(f"{filename}: wrong encoding: the file holds NUL bytes (UTF-16 without a byte-order "
                        "mark, or not text at all); save it as 'CSV UTF-8'")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text, encoding = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        # Bytes cp1252 leaves undefined read as C1 control characters in Latin-1: no text file holds them.
        text, encoding = data.decode("latin-1"), "latin-1"
        bad = next(i for i, ch in enumerate(text) if "\x80" <= ch <= "\x9f")
        raise UserError(f"{filename}: wrong encoding: byte {bad} (0x{data[bad]:02x}) is neither UTF-8 nor "
                        "Latin-1/Windows-1252 text; save the file as 'CSV UTF-8'")
    return text, encoding


def detect_delimiter(text: str) -> str:
    """The delimiter that splits the first rows into the most consistent number of columns (2 or more)."""
    sample = text[:_SNIFF_BYTES]
    if len(text) > _SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(sample), delimiter=delimiter) if any(c.strip() for c in r)][:200]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        consistent = sum(1 for r in rows if len(r) == width) / len(rows)
        score = (consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _read_header(text: str, delimiter: str, filename: str) -> list[str]:
    for record in csv.reader(io.StringIO(text), delimiter=delimiter):
        if any(cell.strip() for cell in record):
            headers = [cell.strip() for cell in record]
            break
    else:  # pragma: no cover - text.strip() was checked by the caller
        raise UserError(f"{filename}: the file has no header row")
    seen: dict[str, int] = {}
    for position, header in enumerate(headers, start=1):
        if not header:
            continue
        key = header.lower()
        if key in seen:
            raise UserError(f"{filename}: row 1: the header {header!r} appears twice (columns {seen[key]} and {position}); "
                            "rename one of them")
        seen[key] = position
    return headers


def _read_rows(text: str, delimiter: str, headers: list[str], filename: str) -> pd.DataFrame:
    names = [h or f"__unnamed_{i}" for i, h in enumerate(headers, start=1)]
    # Rows before the header (leading blank lines) are skipped so the header is spreadsheet row 1.
    leading_blank = 0
    for line in io.StringIO(text):
        if line.strip():
            break
        leading_blank += 1
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, na_filter=False,
                            skip_blank_lines=False, header=None, names=names, skiprows=leading_blank + 1,
                            engine="c", quotechar='"', doublequote=True)
    except pd.errors.ParserError as exc:
        found = _RAGGED.search(str(exc))
        if found is None:
            raise UserError(f"{filename}: not a readable CSV ({str(exc).strip()})") from None
        # pandas counts file lines from 1, header included: the row a text editor shows.
        raise UserError(f"{filename}: line {found['line']} has {found['saw']} cells but the header has "
                        f"{len(headers)} (a stray {delimiter_name(delimiter)} or an unquoted value?)") from None
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame(columns=names, dtype=object)
    frame = frame.astype(object).where(frame.notna(), "")
    frame.index = pd.RangeIndex(2, 2 + len(frame)) if len(frame) else pd.RangeIndex(0)
    # Columns without a header are kept only when they hold data (a trailing delimiter makes an empty one).
    for i, header in enumerate(headers, start=1):
        if not header:
            column = f"__unnamed_{i}"
            if (frame[column].astype(str).str.strip() != "").any():
                raise UserError(f"{filename}: row 1: column {i} has data but no header; give it a name")
            frame = frame.drop(columns=column)
    blank = (frame.apply(lambda col: col.astype(str).str.strip()) == "").all(axis=1) if len(frame.columns) else None
    if blank is not None:
        frame = frame[~blank]
    if frame.empty:
        raise UserError(f"{filename}: the file has a header row but no data rows")
    return frame
