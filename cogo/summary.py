"""`python -m cogo.summary`: what the platform holds now, printed after `make run`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from cogo.config import Settings
from cogo.graph import open_graph
from cogo.local_services import database_url
from cogo.schema_report import row_counts


def main() -> None:
    settings = Settings.from_env()
    from cogo.db.connect import connect

    with connect(database_url(settings)) as conn:
        counts = row_counts(conn)
    table = Table(title="cogo: what was written")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    with open_graph(settings, read_only=True) as graph:
        nodes = graph.query("MATCH (n) RETURN count(n) AS n")[0]["n"]
        rels = graph.query("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
    table.add_row(f"graph nodes ({graph.backend})", str(nodes))
    table.add_row(f"graph relationships ({graph.backend})", str(rels))
    Console().print(table)


if __name__ == "__main__":
    main()
