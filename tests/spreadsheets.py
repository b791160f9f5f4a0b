"""Reading an exported XLSX back, as a spreadsheet program would, with openpyxl."""

import io
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook(data: bytes | Path) -> Workbook:
    """The whole workbook, styles and cell types included (not read-only)."""
    source = data if isinstance(data, Path) else io.BytesIO(data)
    return load_workbook(source, read_only=False)


def values(sheet: Worksheet) -> list[list[Any]]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def typed(sheet: Worksheet, row: int) -> list[tuple[str, Any]]:
    """Row ``row`` (1-based) as (data type, value) per cell: 's', 'n', 'b', 'd'."""
    return [(cell.data_type, cell.value) for cell in sheet[row]]


def downloaded(response: Any) -> bytes:
    assert response.streaming, "expected a streamed file"
    assert response["Content-Type"] == XLSX
    data = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(data)
    return data
