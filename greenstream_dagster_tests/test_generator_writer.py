"""The generator's file writer: extra lines spliced between rows keep exact line numbers."""

import gzip

import polars as pl

from greenstream_dagster.generator.layout import FileLayout
from greenstream_dagster.generator.writer import ExtraLine, render

FRAME = pl.DataFrame({
    "meter_id": ["SM-1", "SM-1", "SM-2"],
    "timestamp": ["2024-04-15T00:00:00Z", "2024-04-15T00:15:00Z", "2024-04-15T00:00:00Z"],
    "value": ["100", None, "3,250"],
    "unit": ["W", "W", "W"],
})


def test_extra_lines_go_before_their_anchor_row_and_rows_shift_past_them():
    extras = [
        ExtraLine(1, ("SM-9", "", "1", "W")),  # before row 1
        ExtraLine(0, None),  # blank line right after the header
        ExtraLine(3, ("SM-9", "x", "1", "W"), field_delta=-1),  # appended, one field short
        ExtraLine(1, None),  # second extra before row 1: keeps the given order
    ]
    rendered = render(FRAME, FileLayout("raw-data/2024-04-15/a.csv", 0, 2), extras)
    lines = rendered.data.decode().split("\n")
    assert lines == [
        "meter_id,timestamp,value,unit",
        "",
        "SM-1,2024-04-15T00:00:00Z,100,W",
        "SM-9,,1,W",
        "",
        "SM-1,2024-04-15T00:15:00Z,,W",
        'SM-2,2024-04-15T00:00:00Z,"3,250",W',
        "SM-9,x,1",
        "",
    ]
    assert rendered.base_lines.tolist() == [3, 6, 7]
    assert rendered.extra_lines == [4, 2, 8, 5]
    assert rendered.extra_texts[2] == "SM-9,x,1"
    assert rendered.data_rows == 5


def test_layout_quirks_apply_to_rows_and_extra_lines_alike():
    layout = FileLayout("raw-data/2024-04-15/a.csv.gz", 0, 2, gzip=True,
                        quirks=frozenset({"bom", "crlf", "quoted", "extra_columns"}))
    rendered = render(FRAME.head(1), layout, [ExtraLine(1, ("SM-9", "t", "1", "kW"))])
    text = gzip.decompress(rendered.data).decode("utf-8")
    assert text == ('\ufeff"Unit"," VALUE ","site_id","Meter_ID","timestamp","firmware"\r\n'
                    '"W","100","DE-N-07","SM-1","2024-04-15T00:00:00Z","fw 2.1"\r\n'
                    '"kW","1","DE-N-07","SM-9","t","fw 2.1"\r\n')
    assert rendered.extra_lines == [3]
