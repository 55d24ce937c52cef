"""Knowledge loses nothing silently: every stored chunk fits the window of the embedder that reads it,
special tokens included, counted by the model's own tokenizer (all-MiniLM-L6-v2) or a bound that is never
under the real count (OpenAI); a source asking for larger chunks is clamped and told why; the embed stage
refuses a text over the window rather than embed it cut short; a Markdown title is not a chunk of its own."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import psycopg
from tokenizers import Tokenizer

from cogo.embed import get_embedder
from cogo.embed.local import LocalEmbedder, model_dir
from cogo.embed.openai_compat import MAX_TOKENS_PER_INPUT, OpenAIEmbedder
from cogo.knowledge.chunk_stage import chunk_files
from cogo.knowledge.chunking import chunk_profile
from cogo.knowledge.embed_stage import embed_files
from cogo.workspace.register import register_files
from tests.embeddings_server import embeddings_server
from tests.knowledge_helpers import CONV, ORG, files_dir

LOCAL = "local:all-MiniLM-L6-v2"
OPENAI = "openai:text-embedding-3-small"
AGENT = uuid.UUID("5a5a0000-0000-4000-8000-0000000000a1")
WORDS = [
    "after",
    "and",
    "approval",
    "calibration",
    "deployment",
    "drifts",
    "every",
    "firmware",
    "for",
    "its",
    "manager",
    "on",
    "pins",
    "purchasing",
    "refresh",
    "rotates",
    "script",
    "servo",
    "so",
    "supplier",
    "the",
    "token",
    "upgrades",
    "use",
    "version",
    "waits",
    "while",
]
ODD = ["naïve", "Zürich", "東京都庁", "данные", "😀👍", "crème brûlée", "ﬁnance", "x²+y²", "İstanbul", "Ελλάδα"]
CODE = ["f(x)=y;", "a->b", "{k: v}", "i++", "0xDEADBEEF", "self.__dict__", "arr[i][j]", "#include <stdio.h>"]


def model_tokenizer() -> Tokenizer:
    """all-MiniLM-L6-v2's tokenizer as the model runs it: special tokens added, nothing cut."""
    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def model_window() -> int:
    return int(json.loads((model_dir() / "sentence_bert_config.json").read_text())["max_seq_length"])


def paragraph(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(20, 220)):
        r = rng.random()
        if r < 0.04:  # long unknown words: many WordPiece pieces each
            out.append("".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(rng.randint(12, 90))))
        elif r < 0.10:
            out.append(rng.choice(ODD))
        elif r < 0.16:
            out.append(rng.choice(CODE))
        else:
            out.append(rng.choice(WORDS))
    return " ".join(out)


def write_varied_corpus(root: Path, files: int = 60, seed: int = 11) -> None:
    """Text, Markdown (a `# Document` title over its sections), Python and HTML of varied lengths."""
    rng = random.Random(seed)
    up = files_dir(root)
    for i in range(files):
        kind = i % 4
        if kind == 0:
            (up / f"notes{i}.txt").write_text("\n\n".join(paragraph(rng) for _ in range(rng.randint(1, 10))))
        elif kind == 1:
            sections = (
                f"## Section {j}\n\n" + "\n\n".join(paragraph(rng) for _ in range(rng.randint(1, 5)))
                for j in range(rng.randint(1, 4))
            )
            (up / f"doc{i}.md").write_text("# Document\n\n" + "\n\n".join(sections) + "\n")
        elif kind == 2:
            body = "\n".join(
                f"    x_{k} = compute({k}, '{rng.choice(ODD)}')  # {paragraph(rng)[:200]}" for k in range(80)
            )
            (up / f"module{i}.py").write_text(f'def big_{i}():\n    """{paragraph(rng)}"""\n{body}\n    return x_0\n')
        else:
            parts = "".join(f"<h2>Part {j}</h2><p>{paragraph(rng)}</p>" for j in range(rng.randint(1, 4)))
            (up / f"page{i}.html").write_text(f"<html><body><h1>Page {i}</h1>{parts}</body></html>")


def stored(conn: psycopg.Connection, profile: str | None = None) -> list[tuple[str, int, str]]:
    query = "SELECT content, token_count, chunk_profile FROM file_chunks"
    if profile is None:
        return conn.execute(query).fetchall()
    return conn.execute(query + " WHERE chunk_profile = %s", (profile,)).fetchall()


def assert_covered(text: str, chunks: list[str]) -> None:
    """Chunks (in order) are pieces of `text` that leave nothing but whitespace out, none starting inside a
    word."""
    covered, start = 0, -1
    for chunk in chunks:
        start = text.index(chunk, start + 1)
        assert not text[covered:start].strip(), f"lost: {text[covered:start]!r}"
        # (Each CJK character is a word of its own to the model.)
        inside = start > 0 and f"{text[start - 1]}{text[start]}".isascii() and text[start - 1 : start + 1].isalnum()
        assert not inside, f"cut word: {chunk[:20]!r}"
        covered = max(covered, start + len(chunk))
    assert not text[covered:].strip(), f"lost: {text[covered:]!r}"


def add_source(conn: psycopg.Connection, model: str, size: int, overlap: int) -> uuid.UUID:
    conn.execute("INSERT INTO agents (id, organization_id, slug, name) VALUES (%s, %s, 'win', 'Win')", (AGENT, ORG))
    (source,) = conn.execute(
        "INSERT INTO agent_knowledge_sources (organization_id, agent_id, name, kind, embedding_model, chunk_size, "
        "chunk_overlap) VALUES (%s, %s, 'big', 'workspace', %s, %s, %s) RETURNING id",
        (ORG, AGENT, model, size, overlap),
    ).fetchone()
    conn.commit()
    return source


def test_the_local_model_declares_its_window_and_budget_from_its_own_files() -> None:
    embedder = LocalEmbedder()
    assert embedder.max_input_tokens == model_window() == 256
    assert embedder.special_tokens == 2 and embedder.chunk_budget == 254
    texts = ["", "unbelievably naïve 東京", "word " * 300]
    assert embedder.window_tokens(texts) == [len(e.ids) for e in model_tokenizer().encode_batch(texts)]
    assert list(embedder.over_window(texts)) == [2]


def test_no_stored_chunk_is_longer_than_the_local_models_window(conn: psycopg.Connection, tmp_path: Path) -> None:
    write_varied_corpus(tmp_path)
    register_files(conn, tmp_path, full=True)
    report = chunk_files(conn, tmp_path, LOCAL)
    assert report.files_extracted == 60 and not report.failures
    rows = stored(conn)
    encodings = model_tokenizer().encode_batch([c for c, _, _ in rows])  # [CLS] ... [SEP], as the model sees it
    counts = [len(e.ids) for e in encodings]
    window = model_window()
    assert max(counts) <= window, f"{sum(n > window for n in counts)} of {len(counts)} chunks over {window} tokens"
    assert {p for _, _, p in rows} == {chunk_profile(254, 32)}  # the default 256 less the 2 special tokens
    # The corpus does reach the edge: many chunks are within a few tokens of the window.
    assert len(rows) > 200 and sum(n >= window - 4 for n in counts) > 50
    # The stored token count is the model's, less its special tokens.
    assert [t + 2 for _, t, _ in rows] == counts
    for path in files_dir(tmp_path).glob("*.txt"):
        chunks = conn.execute(
            "SELECT c.content FROM file_chunks c JOIN files f ON f.id = c.file_id WHERE f.filename = %s "
            "ORDER BY c.chunk_index",
            (path.name,),
        ).fetchall()
        assert_covered(path.read_text(), [c for (c,) in chunks])


def test_a_source_asking_for_more_than_the_window_is_clamped_and_told_why(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    write_varied_corpus(tmp_path, files=12, seed=3)
    source = add_source(conn, LOCAL, 512, 64)
    register_files(conn, tmp_path, full=True)
    report = chunk_files(conn, tmp_path, LOCAL)
    assert report.clamped == [
        f"knowledge source {source}: chunk_size 512 is over what {LOCAL} reads whole (256 tokens including its "
        "2 special tokens): chunked at 254 tokens"
    ]
    big = stored(conn, chunk_profile(254, 64))
    assert big and not stored(conn, chunk_profile(512, 64))
    counts = [len(e.ids) for e in model_tokenizer().encode_batch([c for c, _, _ in big])]
    assert max(counts) <= model_window() and sum(n >= model_window() - 4 for n in counts) > 5


def test_a_markdown_title_heading_goes_with_its_section(conn: psycopg.Connection, tmp_path: Path) -> None:
    up = files_dir(tmp_path)
    long = " ".join(f"calibration step {i} adjusts the servo offset" for i in range(80))  # over one chunk
    (up / "guide.md").write_text(f"# Document\n\n## Overview\n\n{long}\n\n## Details\n\nShort details.\n")
    (up / "page.html").write_text(f"<h1>Release</h1><h2>Notes</h2><p>{long}</p><h2>Fixes</h2><p>Fixed.</p>")
    register_files(conn, tmp_path, full=True)
    chunk_files(conn, tmp_path, LOCAL)
    rows = conn.execute(
        "SELECT f.filename, c.content, c.position FROM file_chunks c JOIN files f ON f.id = c.file_id "
        "ORDER BY f.filename, c.chunk_index"
    ).fetchall()
    headings = {"# Document", "## Overview", "## Details", "Release", "Notes", "Fixes"}
    assert all(set(c.splitlines()) - {""} - headings for _, c, _ in rows), [c for _, c, _ in rows if len(c) < 30]
    guide = [(c, p) for f, c, p in rows if f == "guide.md"]
    assert guide[0][0].startswith("# Document\n\n## Overview\n\ncalibration step 0")
    assert guide[0][1] == {"heading": "Document > Overview", "start_line": 1, "end_line": 5}
    page = [(c, p) for f, c, p in rows if f == "page.html"]
    assert page[0][0].startswith("Release\nNotes\ncalibration step 0") and page[0][1] == {"heading": "Release > Notes"}


def test_the_embed_stage_refuses_a_chunk_over_the_window_instead_of_truncating_it(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    (files_dir(tmp_path) / "a.md").write_text("# A\n\nServo calibration.\n\n# B\n\nGearbox torque.\n")
    register_files(conn, tmp_path, full=True)
    chunk_files(conn, tmp_path, LOCAL, chunk_size=8, chunk_overlap=2)  # one chunk per section
    # A chunk made for another model's window (300 words: over all-MiniLM-L6-v2's 256 tokens).
    conn.execute("UPDATE file_chunks SET content = repeat('torque ', 300) WHERE chunk_index = 1")
    conn.commit()
    report = embed_files(conn, get_embedder, LOCAL, chunk_size=8, chunk_overlap=2)
    failures = conn.execute("SELECT chunk_index, reason FROM embedding_failures").fetchall()
    assert failures == [
        (
            1,
            f"302 tokens is over {LOCAL}'s 256-token window (special tokens included): "
            "not embedded rather than truncated",
        )
    ]
    assert conn.execute("SELECT chunk_index FROM embeddings").fetchall() == [(0,)]
    assert report.by_model[LOCAL].texts_embedded == 1 and report.by_model[LOCAL].failures == 1


def test_embed_outcome_without_truncation_sends_only_texts_that_fit() -> None:
    fits, over = "a" * MAX_TOKENS_PER_INPUT, "é" * 4096  # 8,191 bytes; 8,192 bytes
    with embeddings_server(dims=8) as server:
        embedder = OpenAIEmbedder("text-embedding-3-small", api_key="k", base_url=server.url)
        outcome = embedder.embed_outcome(["short", over, fits], truncate=False)
        assert [r["body"]["input"] for r in server.requests] == [["short", fits]]
    assert outcome.failures == {
        1: f"8192 UTF-8 bytes (the bound on its tokens) is over {OPENAI}'s 8191-token window (special tokens "
        "included): not embedded rather than truncated"
    }
    assert outcome.vectors.shape == (3, 8) and not outcome.vectors[1].any() and outcome.vectors[[0, 2]].all()


def test_openai_declares_its_window_and_chunks_stay_within_its_bound(conn: psycopg.Connection, tmp_path: Path) -> None:
    embedder = OpenAIEmbedder("text-embedding-3-small", api_key=None)
    assert (embedder.max_input_tokens, embedder.special_tokens, embedder.chunk_budget) == (8191, 0, 8191)
    # cl100k_base's BPE files are not available offline: UTF-8 bytes bound its count (a token is 1+ bytes).
    assert embedder.window_tokens(["héllo wörld", "東京"]) == [13, 6]
    rng = random.Random(5)
    # Words over 100 characters are one WordPiece token each, but many cl100k tokens: 400 of them are
    # ~60,000 bytes, far over OpenAI's window while only ~400 tokens to the chunker.
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(150)) for _ in range(400)]
    (files_dir(tmp_path) / "hashes.txt").write_text(" ".join(words))
    source = add_source(conn, OPENAI, 10_000, 32)
    register_files(conn, tmp_path, full=True)
    report = chunk_files(conn, tmp_path, OPENAI)
    assert report.clamped == [
        f"knowledge source {source}: chunk_size 10000 is over what {OPENAI} reads whole (8191 tokens including "
        "its 0 special tokens): chunked at 8191 tokens"
    ]
    rows = stored(conn)
    assert {p for _, _, p in rows} == {chunk_profile(256, 32), chunk_profile(8191, 32)}
    big = [c for c, _, p in rows if p == chunk_profile(8191, 32)]
    sizes = [len(c.encode()) for c in big]
    assert len(sizes) > 5 and max(sizes) <= 8191 and min(sizes) > 4000
    assert_covered(" ".join(words), big)


def test_no_stored_message_piece_is_longer_than_the_local_models_window(conn: psycopg.Connection) -> None:
    from cogo.knowledge.messages import embed_messages

    rng = random.Random(5)
    long_messages = [" ".join(paragraph(rng) for _ in range(12)) for _ in range(6)]
    for text in long_messages:
        conn.execute(
            "INSERT INTO messages (conversation_id, organization_id, role, content) VALUES (%s, %s, 'user', %s)",
            (CONV, ORG, text),
        )
    conn.commit()
    report = embed_messages(conn, get_embedder, LOCAL)
    assert report.messages_embedded == len(long_messages) and not report.failures
    pieces = [r[0] for r in conn.execute("SELECT content FROM embeddings WHERE message_id IS NOT NULL").fetchall()]
    assert len(pieces) > 3 * len(long_messages)  # long messages are cut into several windows
    counts = [len(e.ids) for e in model_tokenizer().encode_batch(pieces)]
    assert max(counts) <= model_window(), f"{sum(c > model_window() for c in counts)} pieces over the window"
