"""Bulk inserts keep NULLs NULL and values as given when a column's first thousand rows are all NULL.

Found on Hypothesis's 1,593-release history (bench_code_graph): LadybugDB's DataFrame scan decides a text
column's type from its first ~1,000 values. With pandas 3's default string dtype, a column NULL there and set
further down made the scan crash the process (a segmentation fault in `LOAD FROM`) or store the text "nan" in
every row of the column, the set values included. MODIFIED_IN.old_path (one rename among 2,319 rows of a
history chunk) crashed the build; CodeFile.skipped or Function.removed_in could have been turned to "nan".
"""

from __future__ import annotations

import datetime as dt

from cogo.graph.base import GraphStore

ROWS = 2500
SET_AT = 2000  # past the scan's sample


def test_a_text_column_null_in_its_first_thousand_rows_keeps_its_nulls_and_values(graph: GraphStore) -> None:
    rows = [{"id": f"f{i}", "repo": "r", "path": f"f{i}.py", "removed_in": None} for i in range(ROWS)]
    rows[SET_AT]["removed_in"] = "abc123"
    assert graph.insert_nodes("CodeFile", rows) == ROWS

    found = graph.query("MATCH (f:CodeFile) RETURN f.removed_in AS removed_in, count(*) AS files ORDER BY files")
    assert found == [{"removed_in": "abc123", "files": 1}, {"removed_in": None, "files": ROWS - 1}]


def test_relationship_properties_null_in_the_first_thousand_rows_keep_their_nulls_and_values(
    graph: GraphStore,
) -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    graph.insert_nodes("Commit", [{"id": "c", "repo": "r", "hash": "c", "timestamp": when}])
    graph.insert_nodes("CodeFile", [{"id": f"f{i}", "repo": "r", "path": f"f{i}.py"} for i in range(ROWS)])
    rels = [{"src": f"f{i}", "dst": "c", "change": "modified", "old_path": None} for i in range(ROWS)]
    rels[SET_AT].update(change="renamed", old_path="old.py")
    assert graph.insert_relationships("MODIFIED_IN", "CodeFile", "Commit", rels) == ROWS

    found = graph.query(
        "MATCH (:CodeFile)-[m:MODIFIED_IN]->(:Commit) RETURN m.change AS change, m.old_path AS old_path, "
        "count(*) AS files ORDER BY files"
    )
    assert found == [
        {"change": "renamed", "old_path": "old.py", "files": 1},
        {"change": "modified", "old_path": None, "files": ROWS - 1},
    ]


def test_every_property_type_survives_a_column_null_in_its_first_thousand_rows(graph: GraphStore) -> None:
    rows = [{"id": f"s{i}", "repo": "r", "name": f"s{i}", "qualified_name": f"m.s{i}"} for i in range(ROWS)]
    rows[SET_AT].update(start_line=7, is_method=True, decorators=["property"], docstring="Set late.")
    graph.insert_nodes("Function", rows)

    late = graph.query(
        "MATCH (f:Function {id: $id}) RETURN f.start_line AS start_line, f.is_method AS is_method, "
        "f.decorators AS decorators, f.docstring AS docstring",
        {"id": f"s{SET_AT}"},
    )
    assert late == [{"start_line": 7, "is_method": True, "decorators": ["property"], "docstring": "Set late."}]
    unset = graph.query(
        "MATCH (f:Function) WHERE f.start_line IS NULL AND f.is_method IS NULL AND f.docstring IS NULL "
        "RETURN count(*) AS n"
    )
    assert unset == [{"n": ROWS - 1}]
