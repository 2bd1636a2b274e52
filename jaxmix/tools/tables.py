"""Numeric tables from files, for the command line: CSV, .npy, .npz and Parquet.

`read_table(path, columns, key)` returns the selected columns as a float64
array with their names and 0-based positions. Anything that is not a
finite number (a word, an empty cell, NA, NaN, inf) is rejected with a
`DataError` naming the file, the column and the line (CSV) or row (0-based,
arrays and Parquet).

CSV: the delimiter is sniffed among `, ; tab |` (`; tab |` with a decimal
comma); the first row is a header when any of its cells is not a number.
Files without names (headerless CSV, .npy, .npz) name their columns
`x0, x1, ...` (scikit-learn's convention). `columns` entries match names
first, then 0-based positions. A CSV is read as UTF-8 (UTF-16 with a
byte-order mark), straight into a float64 array by pyarrow, or pandas, when
one is installed (both optional): ten times faster and a fifth of the memory
of Python's `csv` module, which reads the file only when they are missing
or refuse it, and then to say exactly where and why. With `drop_missing`,
rows with a missing value (an empty cell, NA, NaN, null) are left out and
their 0-based positions among the data rows kept in `Table.dropped`.
"""

from __future__ import annotations

import array
import csv
import math
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PARQUET_SUFFIXES = (".parquet", ".pq")
_MISSING = {"", "na", "nan", "null", "none", "n/a", "?", "-"}
_DECIMAL_COMMA = re.compile(r"\s*[-+]?\d*,\d+([eE][-+]?\d+)?\s*")
CHUNK_ROWS = 65536  # rows the Python reader holds as text at a time


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
    dropped: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # data rows left out (drop_missing)


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
    decimal: str = ".",
    drop_missing: bool = False,
) -> Table:
    """Read the numeric columns `columns` of the data file at `path` (see the module docstring).

    `choose(names, named)`, when given, picks the positions instead of
    `columns` once the file's column names are known (only the chosen
    columns need to be numeric). `decimal` is the CSV's decimal mark
    ("." or ","); `drop_missing` leaves out rows with a missing value
    instead of refusing them.

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
    if not stat.S_ISREG(os.stat(where).st_mode):
        # A FIFO or device would block the reader, or never end.
        raise DataError(
            f"{where} is not a regular file (a pipe, device or socket): jaxmix reads data from files; "
            "write the data to a file first"
        )
    if decimal not in (".", ","):
        raise DataError(f"--decimal must be '.' or ',', got {decimal!r}")
    suffix = os.path.splitext(where)[1].lower()
    if key is not None and suffix != ".npz":
        raise DataError(f"--key picks an array of an .npz file; {where} is not one")
    if suffix == ".npy":
        return _from_array(_load_npy(where), choose, where, drop_missing)
    if suffix == ".npz":
        return _from_array(_load_npz(where, key), choose, where, drop_missing)
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(where, choose, drop_missing)
    return _read_csv(where, choose, decimal, drop_missing)


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


def _from_array(a: np.ndarray, choose: Chooser, where: str, drop_missing: bool = False) -> Table:
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
    x, dropped = _drop_missing(a[:, idx].astype(np.float64), drop_missing)
    _check_finite(x, [names[j] for j in idx], where, lambda i: f"row {i}")
    return _table(x, names, idx, False, where, dropped)


def _drop_missing(x: np.ndarray, drop: bool) -> tuple[np.ndarray, np.ndarray]:
    """`x` without its rows holding NaN (a missing value) when `drop`, and the positions left out."""
    if not drop:
        return x, np.zeros(0, np.int64)
    gaps = np.isnan(x).any(axis=1)
    return x[~gaps], np.flatnonzero(gaps)


def _table(
    x: np.ndarray, names: list[str], idx: list[int], named: bool, where: str, dropped: np.ndarray | None = None
) -> Table:
    if x.shape[0] == 0:
        raise DataError(
            f"{where}: no data rows" + (" without a missing value" if dropped is not None and len(dropped) else "")
        )
    return Table(
        x, [names[j] for j in idx], idx, named, len(names), np.zeros(0, np.int64) if dropped is None else dropped
    )


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


def _is_number(cell: str, decimal: str = ".") -> bool:
    try:
        return math.isfinite(float(cell if decimal == "." else cell.replace(",", ".")))
    except ValueError:
        return False


def _encoding(where: str) -> str:
    """UTF-16 when the file starts with its byte-order mark, else UTF-8 (a UTF-8 BOM is skipped)."""
    with open(where, "rb") as f:
        head = f.read(2)
    return "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"


def _read_csv(where: str, choose: Chooser, decimal: str = ".", drop_missing: bool = False) -> Table:
    encoding = _encoding(where)
    try:
        with open(where, newline="", encoding=encoding) as f:
            sample = f.read(65536)
            f.seek(0)
            delimiter = _delimiter(sample, decimal)
            reader = csv.reader(f, delimiter=delimiter)
            first = next((row for row in reader if row), None)
            if first is None:
                raise DataError(f"{where}: the file is empty")
            ncol = len(first)
            # A header has a word in it; a first data row may still have a missing value.
            named = any(c.strip() and c.strip().lower() not in _MISSING and not _is_number(c, decimal) for c in first)
            names = [c.strip() or f"x{j}" for j, c in enumerate(first)] if named else auto_names(ncol)
            idx = choose(names, named)
            if encoding == "utf-8-sig" and reader.line_num == 1:
                fast = _fast_csv(where, delimiter, named, ncol, idx, decimal, drop_missing)
                if fast is not None:
                    x, dropped = fast
                    return _table(x, names, idx, named, where, dropped)
            # The exact reader: it says where a value is wrong and why.
            return _parse_csv(reader, None if named else first, ncol, names, idx, where, decimal, drop_missing)
    except UnicodeDecodeError as e:
        name = os.path.basename(where)
        raise DataError(
            f"{where}: not UTF-8 text (byte 0x{e.object[e.start]:02x} cannot be decoded); jaxmix reads CSV as "
            f"UTF-8, or UTF-16 with a byte-order mark. Convert it, e.g. from Latin-1: "
            f"iconv -f latin1 -t utf-8 {name} > utf8-{name} (or save .npy or Parquet)"
        ) from None
    except csv.Error as e:
        raise DataError(f"{where}: malformed CSV ({e})") from None


def _delimiter(sample: str, decimal: str = ".") -> str:
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    if len(lines) > 1 and not sample.endswith("\n"):
        lines = lines[:-1]  # the sample may end mid-line
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|" if decimal == "." else ";\t|").delimiter
    except csv.Error:
        return "," if decimal == "." else ";"  # one column, or nothing to tell


def _fast_csv(
    where: str, delimiter: str, named: bool, ncol: int, idx: list[int], decimal: str, drop_missing: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """The chosen columns as float64 by pyarrow or pandas (optional extras); None when neither is
    installed or the file has anything that is not a finite number (the exact reader then says what)."""
    nulls = sorted({v for m in _MISSING for v in (m, m.upper(), m.title())})
    x: np.ndarray | None = None
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        cols = [f"c{j}" for j in range(ncol)]
        t = pcsv.read_csv(
            where,
            read_options=pcsv.ReadOptions(column_names=cols, skip_rows=int(named)),
            parse_options=pcsv.ParseOptions(delimiter=delimiter),
            convert_options=pcsv.ConvertOptions(
                include_columns=[cols[j] for j in idx],
                column_types={cols[j]: pa.float64() for j in idx},
                null_values=nulls,
                decimal_point=decimal,
            ),
        )
        x = np.empty((t.num_rows, len(idx)))
        for i, j in enumerate(idx):
            x[:, i] = t.column(cols[j]).to_numpy()
        del t
    except ImportError:
        try:
            import pandas as pd

            frame = pd.read_csv(
                where,
                sep=delimiter,
                header=None,
                skiprows=int(named),
                usecols=idx,
                dtype=dict.fromkeys(idx, np.float64),
                decimal=decimal,
                na_values=nulls,
                keep_default_na=False,
                encoding="utf-8-sig",
                engine="c",
            )
            x = frame[idx].to_numpy(np.float64)
        except Exception:  # not installed, or a value it cannot take: the exact reader tells
            return None
    except Exception:
        return None
    bad = ~np.isfinite(x)
    if drop_missing:
        bad &= ~np.isnan(x)
    if bad.any():
        return None
    return _drop_missing(x, drop_missing)


def _parse_csv(
    reader: Any,
    first: list[str] | None,
    ncol: int,
    names: list[str],
    idx: list[int],
    where: str,
    decimal: str,
    drop_missing: bool,
) -> Table:
    """The data rows, `CHUNK_ROWS` at a time into float64 (`first`: a first row that is data)."""
    chosen = [names[j] for j in idx]
    blocks: list[np.ndarray] = []
    lines = array.array("q")
    cells: list[list[str]] = []

    def flush() -> None:
        start = len(lines) - len(cells)
        try:
            # numpy parses all the cells at C speed; the cell-by-cell loop below
            # only runs to find the culprit (or for spellings only Python takes).
            block = np.array(cells, dtype=str).astype(np.float64)
        except ValueError:
            block = _parse_cells(cells, lines[start:], chosen, where, decimal, drop_missing)
        blocks.append(block.reshape(len(cells), len(idx)))
        cells.clear()

    def add(row: list[str]) -> None:
        cells.append([row[j] if decimal == "." else row[j].replace(",", ".") for j in idx])
        lines.append(reader.line_num)
        if len(cells) >= CHUNK_ROWS:
            flush()

    if first is not None:
        add(first)
    for row in reader:
        if not row:
            continue  # blank line
        if len(row) != ncol:
            raise DataError(f"{where}: line {reader.line_num} has {len(row)} fields, expected {ncol}")
        add(row)
    if cells:
        flush()
    if not blocks:
        raise DataError(f"{where}: no data rows")
    x = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    x, dropped = _drop_missing(x, drop_missing)
    kept = np.delete(np.frombuffer(lines, np.int64), dropped) if len(dropped) else lines
    _check_finite(x, chosen, where, lambda i: f"line {kept[i]}")
    return _table(x, names, idx, first is None, where, dropped)


def _parse_cells(
    cells: list[list[str]], lines: Any, names: list[str], where: str, decimal: str, drop_missing: bool
) -> np.ndarray:
    x = np.empty((len(cells), len(names)))
    for i, row in enumerate(cells):
        for j, c in enumerate(row):
            try:
                x[i, j] = float(c)
            except ValueError:
                missing = c.strip().lower() in _MISSING
                if missing and drop_missing:
                    x[i, j] = np.nan
                    continue
                what = "missing value" if missing else "non-numeric value"
                shown = c if decimal == "." else c.replace(".", ",")
                hint = ""
                if decimal == "." and _DECIMAL_COMMA.fullmatch(c):
                    hint = " (a decimal comma? read the file with --decimal ,)"
                elif missing:
                    hint = " (leave such rows out with --drop-missing)"
                raise DataError(f"{where}: {what} {shown!r} in column {names[j]!r} at line {lines[i]}{hint}") from None
    return x


def _read_parquet(where: str, choose: Chooser, drop_missing: bool = False) -> Table:
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
        if col.null_count and not drop_missing:
            i = int(np.argmax(np.asarray(pc.is_null(col))))
            raise DataError(f"{where}: missing value (null) in column {names[j]!r} at row {i}")
        cols.append(np.asarray(col.to_numpy(), dtype=np.float64))
    x, dropped = _drop_missing(np.stack(cols, axis=1) if cols else np.empty((table.num_rows, 0)), drop_missing)
    _check_finite(x, [names[j] for j in idx], where, lambda i: f"row {i}")
    return _table(x, names, idx, True, where, dropped)
