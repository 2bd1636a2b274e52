"""Numeric tables from files, for the command line: CSV, .npy, .npz and Parquet.

`read_table(path, columns, key)` returns the selected columns as a float64
array with their names and 0-based positions. Anything that is not a
finite number (a word, an empty cell, NA, NaN, inf) is rejected with a
`DataError` naming the file, the column and the line (CSV) or row (0-based,
arrays and Parquet).

CSV: the delimiter is sniffed among `, ; tab |`; the first row is a header
when any of its cells is not a number. Files without names (headerless CSV,
.npy, .npz) name their columns `x0, x1, ...` (scikit-learn's convention).
`columns` entries match names first, then 0-based positions.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

PARQUET_SUFFIXES = (".parquet", ".pq")
_MISSING = {"", "na", "nan", "null", "none", "n/a", "?", "-"}


class DataError(ValueError):
    """A data file the command line cannot use; the message says where and why."""


@dataclass(frozen=True)
class Table:
    """Selected columns of a data file."""

    x: np.ndarray  # (n_samples, n_selected) float64
    names: list[str]  # name of each selected column
    indices: list[int]  # 0-based position of each selected column in the file
    named: bool  # True when the names come from the file (CSV header, Parquet)
    n_columns: int  # columns in the file


def auto_names(d: int) -> list[str]:
    return [f"x{j}" for j in range(d)]


def select(names: list[str], named: bool, columns: list[str] | None, where: str) -> list[int]:
    """Positions of `columns` (names first, then 0-based indices); all columns when None."""
    if columns is None:
        return list(range(len(names)))
    if not columns:
        raise DataError("--columns needs at least one column")
    out: list[int] = []
    for c in columns:
        if c in names:
            j = names.index(c)
        else:
            try:
                j = int(c)
            except ValueError:
                shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
                raise DataError(f"{where}: unknown column {c!r} (columns: {shown})") from None
            if not 0 <= j < len(names):
                raise DataError(f"{where}: column index {j} is out of range: the data have {len(names)} columns")
        if j in out:
            raise DataError(f"{where}: column {names[j]!r} is selected twice")
        out.append(j)
    return out


Chooser = Callable[[list[str], bool], list[int]]  # (names, named) -> positions


def read_table(
    path: str | os.PathLike[str],
    columns: list[str] | None = None,
    key: str | None = None,
    *,
    choose: Chooser | None = None,
) -> Table:
    """Read the numeric columns `columns` of the data file at `path` (see the module docstring).

    `choose(names, named)`, when given, picks the positions instead of
    `columns` once the file's column names are known (only the chosen
    columns need to be numeric).

    Raises:
      FileNotFoundError: no file at `path`.
      DataError: a file that is not a numeric table, an unknown column, a
        missing or non-numeric value.
    """
    where = os.fspath(path)
    if choose is None:

        def choose(names: list[str], named: bool) -> list[int]:
            return select(names, named, columns, where)

    if not os.path.exists(where):
        raise FileNotFoundError(2, "No such file", where)
    if os.path.isdir(where):
        raise DataError(f"{where} is a directory, not a data file")
    suffix = os.path.splitext(where)[1].lower()
    if key is not None and suffix != ".npz":
        raise DataError(f"--key picks an array of an .npz file; {where} is not one")
    if suffix == ".npy":
        return _from_array(_load_npy(where), choose, where)
    if suffix == ".npz":
        return _from_array(_load_npz(where, key), choose, where)
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(where, choose)
    return _read_csv(where, choose)


def _load_npy(where: str) -> np.ndarray:
    try:
        return np.load(where, allow_pickle=False)
    except ValueError as e:
        raise DataError(f"{where}: not a numeric .npy array ({e})") from None


def _load_npz(where: str, key: str | None) -> np.ndarray:
    try:
        with np.load(where, allow_pickle=False) as z:
            files = list(z.files)
            if "__jaxmix__" in files:
                raise DataError(f"{where} is a jaxmix model file, not data")
            if key is None:
                if len(files) != 1:
                    raise DataError(f"{where} holds {len(files)} arrays ({', '.join(files)}): pick one with --key")
                key = files[0]
            elif key not in files:
                raise DataError(f"{where} has no array {key!r} (arrays: {', '.join(files)})")
            return z[key]
    except DataError:
        raise
    except Exception as e:  # a damaged zip can fail in many ways; say so, no traceback
        raise DataError(f"{where}: not a readable .npz archive ({type(e).__name__}: {e})") from None


def _from_array(a: np.ndarray, choose: Chooser, where: str) -> Table:
    if a.dtype.fields is not None:
        raise DataError(f"{where}: structured arrays are not supported; save a 2-D numeric array")
    if a.dtype.kind not in "biuf":
        raise DataError(f"{where}: the array holds {a.dtype} values, not numbers")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise DataError(f"{where}: expected a 2-D array (samples x features), got shape {a.shape}")
    names = auto_names(a.shape[1])
    idx = choose(names, False)
    x = a[:, idx].astype(np.float64)
    _check_finite(x, [names[j] for j in idx], where, lambda i: f"row {i}")
    return _table(x, names, idx, False, where)


def _table(x: np.ndarray, names: list[str], idx: list[int], named: bool, where: str) -> Table:
    if x.shape[0] == 0:
        raise DataError(f"{where}: no data rows")
    return Table(x, [names[j] for j in idx], idx, named, len(names))


def _check_finite(x: np.ndarray, names: list[str], where: str, row: Any) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        what = "missing value (NaN)" if np.isnan(x[i, j]) else f"non-finite value {x[i, j]}"
        rows = np.flatnonzero(bad.any(axis=1))
        also = ""
        if len(rows) > 1:
            shown = ", ".join(row(int(r)) for r in rows[1:6])
            more = f" and {len(rows) - 6} more" if len(rows) > 6 else ""
            also = f"; {len(rows)} rows have NaN or inf values, also {shown}{more}"
        raise DataError(f"{where}: {what} in column {names[j]!r} at {row(i)}{also}")


def _is_number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def _read_csv(where: str, choose: Chooser) -> Table:
    try:
        with open(where, newline="", encoding="utf-8-sig") as f:
            sample = f.read(65536)
            f.seek(0)
            return _parse_csv(csv.reader(f, delimiter=_delimiter(sample)), choose, where)
    except UnicodeDecodeError:
        raise DataError(f"{where}: not a text (CSV) file; jaxmix reads CSV, .npy, .npz and Parquet") from None
    except csv.Error as e:
        raise DataError(f"{where}: malformed CSV ({e})") from None


def _delimiter(sample: str) -> str:
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    if len(lines) > 1 and not sample.endswith("\n"):
        lines = lines[:-1]  # the sample may end mid-line
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","  # one column, or nothing to tell


def _parse_csv(reader: Any, choose: Chooser, where: str) -> Table:
    first: list[str] | None = None
    for row in reader:
        if row:
            first = row
            break
    if first is None:
        raise DataError(f"{where}: the file is empty")
    ncol = len(first)
    # A header has a word in it; a first data row may still have a missing value.
    named = any(c.strip() and c.strip().lower() not in _MISSING and not _is_number(c) for c in first)
    if named:
        names = [c.strip() or f"x{j}" for j, c in enumerate(first)]
        first_line = None
    else:
        names = auto_names(ncol)
        first_line = reader.line_num
    idx = choose(names, named)
    cells: list[list[str]] = []
    lines: list[int] = []
    if first_line is not None:
        cells.append([first[j] for j in idx])
        lines.append(first_line)
    for row in reader:
        if not row:
            continue  # blank line
        if len(row) != ncol:
            raise DataError(f"{where}: line {reader.line_num} has {len(row)} fields, expected {ncol}")
        cells.append([row[j] for j in idx])
        lines.append(reader.line_num)
    if not cells:
        raise DataError(f"{where}: no data rows")
    try:
        # numpy parses all the cells at C speed; the cell-by-cell loop below
        # only runs to find the culprit (or for spellings only Python takes).
        x = np.array(cells, dtype=str).astype(np.float64)
    except ValueError:
        x = _parse_cells(cells, lines, [names[j] for j in idx], where)
    _check_finite(x, [names[j] for j in idx], where, lambda i: f"line {lines[i]}")
    return _table(x, names, idx, named, where)


def _parse_cells(cells: list[list[str]], lines: list[int], names: list[str], where: str) -> np.ndarray:
    x = np.empty((len(cells), len(names)))
    for i, row in enumerate(cells):
        for j, c in enumerate(row):
            try:
                x[i, j] = float(c)
            except ValueError:
                what = "missing value" if c.strip().lower() in _MISSING else "non-numeric value"
                raise DataError(f"{where}: {what} {c!r} in column {names[j]!r} at line {lines[i]}") from None
    return x


def _read_parquet(where: str, choose: Chooser) -> Table:
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"reading Parquet ({where}) needs pyarrow: pip install pyarrow (or pip install 'jaxmix[parquet]')"
        ) from None
    try:
        table = pq.read_table(where)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{where}: not a readable Parquet file ({e})") from None
    names = list(table.column_names)
    idx = choose(names, True)
    cols = []
    for j in idx:
        col = table.column(j)
        t = col.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            raise DataError(f"{where}: column {names[j]!r} holds {t} values, not numbers")
        if col.null_count:
            i = int(np.argmax(np.asarray(pc.is_null(col))))
            raise DataError(f"{where}: missing value (null) in column {names[j]!r} at row {i}")
        cols.append(np.asarray(col.to_numpy(), dtype=np.float64))
    x = np.stack(cols, axis=1) if cols else np.empty((table.num_rows, 0))
    _check_finite(x, [names[j] for j in idx], where, lambda i: f"row {i}")
    return _table(x, names, idx, True, where)
