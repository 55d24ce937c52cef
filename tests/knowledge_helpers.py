"""Real files of every supported type, an organisation with a user and a conversation, for the knowledge tests."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import psycopg

ORG = "org_kn_acme"
OTHER_ORG = "org_kn_globex"
USER = "user_kn_alice"
OTHER_USER = "user_kn_carol"
CONV = uuid.UUID("7a3e0000-0000-4000-8000-000000000001")
OTHER_CONV = uuid.UUID("7a3e0000-0000-4000-8000-000000000002")


def seed_tenants(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'Acme'), (%s, 'Globex')", (ORG, OTHER_ORG))
    conn.execute("INSERT INTO users (id, email) VALUES (%s, 'a@x'), (%s, 'c@x')", (USER, OTHER_USER))
    conn.execute(
        "INSERT INTO organization_memberships (id, organization_id, user_id) VALUES "
        "('orgmem_kn_1', %s, %s), ('orgmem_kn_2', %s, %s)",
        (ORG, USER, OTHER_ORG, OTHER_USER),
    )
    conn.execute(
        "INSERT INTO conversations (id, organization_id, user_id) VALUES (%s, %s, %s), (%s, %s, %s)",
        (CONV, ORG, USER, OTHER_CONV, OTHER_ORG, OTHER_USER),
    )


def files_dir(root: Path, kind: str = "uploads", org: str = ORG, user: str = USER, conv: uuid.UUID = CONV) -> Path:
    d = root / org / user / str(conv) / "files" / kind
    d.mkdir(parents=True, exist_ok=True)
    return d


def pdf_bytes(pages: list[str]) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    for text in pages:
        y = 800
        for line in text.splitlines():
            c.drawString(50, y, line)
            y -= 14
        c.showPage()
    c.save()
    return buf.getvalue()


def docx_bytes() -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("Supplier approval", level=1)
    d.add_paragraph("Every new supplier needs a ringi approved by the purchasing manager.")
    d.add_heading("Thresholds", level=2)
    d.add_paragraph("Orders above 5 million yen also need the director's seal.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "step", "owner"
    table.cell(1, 0).text, table.cell(1, 1).text = "review", "finance"
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


PYTHON_SOURCE = '''"""Token service."""
import time


class TokenService:
    """Issues and refreshes tokens."""

    def refresh_token(self, token: str) -> str:
        """Rotate a refresh token on every use."""
        return token[::-1] + str(time.time())

    def revoke(self, token: str) -> None:
        pass


def helper() -> int:
    return 42
'''


def write_corpus(root: Path) -> dict[str, Path]:
    """One file of each supported type plus the awkward ones, under the first conversation's uploads."""
    up = files_dir(root, "uploads")
    gen = files_dir(root, "generated")
    att = files_dir(root, "attachments")
    paths = {
        "txt": up / "notes.txt",
        "md": up / "handbook.md",
        "py": gen / "token_service.py",
        "pdf": up / "report.pdf",
        "docx": att / "approval.docx",
        "html": att / "page.html",
        "csv": up / "stock.csv",
        "json": gen / "config.json",
        "png": att / "logo.png",
        "corrupt_pdf": up / "broken.pdf",
        "empty": up / "empty.txt",
        "latin1": up / "legacy.txt",
    }
    paths["txt"].write_text("The quarterly stock forecast predicts growth in robotics parts.\n" * 3)
    paths["md"].write_text(
        "# Onboarding handbook\n\nWelcome to Acme.\n\n## Security\n\nRefresh tokens rotate on every use.\n"
        "\n## Holidays\n\nTwenty days a year.\n"
    )
    paths["py"].write_text(PYTHON_SOURCE)
    paths["pdf"].write_bytes(
        pdf_bytes(["Quarterly report page one: revenue grew.", "Page two: the deployment script for production."])
    )
    paths["docx"].write_bytes(docx_bytes())
    paths["html"].write_text(
        "<html><head><style>p{}</style><script>var x=1;</script></head><body><h1>Release notes</h1>"
        "<p>Version 2 adds token rotation.</p><h2>Fixes</h2><p>The token refresh bug is fixed.</p></body></html>"
    )
    paths["csv"].write_text("item,quantity\nservo motor,120\ngear box,45\n")
    paths["json"].write_text(json.dumps({"deploy": {"target": "production", "replicas": 3}, "owner": "alice"}))
    paths["png"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    paths["corrupt_pdf"].write_bytes(b"%PDF-1.7\n1 0 obj <</Type /Catalog /Pages 2 0 R>>\nthis is not a pdf\x00\xff")
    paths["empty"].write_bytes(b"")
    paths["latin1"].write_bytes("Caf\xe9 cr\xe8me br\xfbl\xe9e: la r\xe9union de l'\xe9quipe.\n".encode("latin-1"))
    return paths
