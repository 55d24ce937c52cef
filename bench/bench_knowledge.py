"""Benchmark workspace files to searchable knowledge (issue 7). Prints each figure next to its limit.

    python bench/bench_knowledge.py                # the issue's size: 5,000 files (~55,000 chunks), 1M vectors
    # the issue's size in about half an hour on 2 cores: 64-token chunks (~53,000), LlamaIndex in batches of 64
    python bench/bench_knowledge.py --chunk-tokens 64 --chunks-per-file 6 --peer-embed-batch 64
    nice -n 10 python bench/bench_knowledge.py --files 200 --vectors 20000     # a quick look

Phases, against fresh databases on the server of COGO_DATABASE_URL (else the embedded one under COGO_HOME)
and a generated workspace under --workdir:
 1. corpus: --files files (Markdown, text, Python, CSV, JSON, HTML) of about --chunks-per-file chunks of
    --chunk-tokens tokens each, over --orgs organisations; 2% are copies of another file (uploads happen twice);
 2. cogo end to end (register, extract, chunk at --chunk-tokens, embed with all-MiniLM-L6-v2, binary COPY);
 3. the embedder alone, naively (SentenceTransformer.encode, batch 32) on a sample of the same chunks;
 4. a re-run with nothing changed from a fresh process: wall time and embedding calls (limits: 2 s, 0);
 5. the peer, LlamaIndex IngestionPipeline (SentenceSplitter at --chunk-tokens, HuggingFaceEmbedding on the same
    model, PGVectorStore, a docstore for its re-run), on the same whole corpus in this run, beside phases 2 and
    4: time, re-run time, rows after two runs (needs `pip install -e '.[bench]'`; --skip-peer leaves it out);
 6. --vectors searchable chunks: the corpus's own chunks plus copies of them (their text for full-text search,
    their vector plus noise) on file rows of each organisation, bulk-written with binary COPY; the HNSW index
    built in parallel with a large maintenance_work_mem; then vector search p50/p99 with the organisation
    filter and recall@10 against exact search (limits: p99 under 50 ms, recall at least 0.95), and hybrid
    search_chunks latency. This database stays after the run (printed last): bench/bench_service.py's search
    load runs against it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cogo.config import Settings
from cogo.db import admin
from cogo.db.urls import redact, with_database
from cogo.knowledge import search as search_module
from cogo.knowledge.chunking import chunk_profile
from cogo.knowledge.search import FILTERED_EF_SEARCH, HNSW_SCAN_MEM_MULTIPLIER, TENANT_EF_SEARCH
from cogo.local_services import start_database

DB_NAME = "cogo_bench_knowledge"
MODEL = "local:all-MiniLM-L6-v2"
RERUN_LIMIT_S = 2.0
P99_LIMIT_MS = 50.0
RECALL_LIMIT = 0.95
PEER_RATIO_TARGET = 1.2
FILES_PER_ORG = 1000  # file rows the --vectors chunks belong to, per organisation
# Per-dimension noise on the new rows' vectors and on the queries (about 0.4 in norm).
NOISE = 0.02
# The corpus is written in real English: sentences from the docstrings and comments of the Python files installed
# here (the standard library and site-packages). A small made-up vocabulary makes every chunk look like every
# other one, to the embedder (vectors in one tight clump: approximate search cannot tell neighbours apart) and to
# full-text search (every query matches most rows), which is nothing like a real workspace.
SENTENCE_LIMIT = 300_000
_DOCS = re.compile(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'|^\s*#\s?(.*)$', re.S | re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def real_sentences(cache: Path) -> list[str]:
    """Sentences of 6-40 words, mostly letters, deduplicated and in a stable order (cached under the workdir)."""
    if cache.exists():
        return cache.read_text().splitlines()
    paths = sysconfig.get_paths()
    found: dict[str, None] = {}
    for root in (Path(paths["stdlib"]), Path(paths["purelib"])):
        for path in sorted(root.rglob("*.py")):
            if len(found) >= SENTENCE_LIMIT:
                break
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for m in _DOCS.finditer(text):
                block = " ".join((m.group(1) or m.group(2) or m.group(3) or "").split())
                for candidate in _SENTENCE_END.split(block):
                    n = len(candidate.split())
                    if 6 <= n <= 40 and sum(c.isalpha() or c == " " for c in candidate) / len(candidate) > 0.85:
                        found[candidate] = None
    sentences = list(found)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("\n".join(sentences))
    return sentences


SENTENCES: list[str] = []  # filled by main() before the corpus is generated
WORDS: list[str] = []  # the corpus's most frequent words of 4+ letters (CSV items, hybrid search queries)


def load_text_sources(workdir: Path) -> None:
    SENTENCES[:] = real_sentences(workdir / "sentences.txt")
    counts = collections.Counter(
        w for s in SENTENCES[:50_000] for w in (t.strip(".,;:()[]'\"`").lower() for t in s.split()) if len(w) >= 4
    )
    WORDS[:] = [w for w, _ in counts.most_common(3000) if w.isalpha()]


def fresh_database(server_url: str, name: str = DB_NAME) -> str:
    return admin.recreate_database(server_url, name)


def overlap_for(chunk_tokens: int) -> int:
    return chunk_tokens // 8  # 256 -> 32, the default profile's overlap


def profile_for(chunk_tokens: int) -> str:
    """The profile cogo's chunk stage uses for this size: clamped to what the model reads whole."""
    from cogo.knowledge.targets import fitted_size

    size, overlap, _ = fitted_size(MODEL, chunk_tokens, overlap_for(chunk_tokens))
    return chunk_profile(size, overlap)


def sentence(rng: random.Random) -> str:
    return rng.choice(SENTENCES)


def paragraph(rng: random.Random, tokens: int) -> str:
    out, n = [], 0
    while n < tokens:
        s = sentence(rng)
        out.append(s)
        n += len(s.split()) + 1
    return " ".join(out)


def file_text(rng: random.Random, kind: str, chunks: int, chunk_tokens: int) -> tuple[str, str]:
    """A file of about `chunks` chunks of `chunk_tokens` tokens (a section a little under a chunk each)."""
    scale = chunk_tokens / 256
    words = max(8, int(200 * scale))
    if kind == "md":
        body = "\n\n".join(f"## Section {i}\n\n{paragraph(rng, words)}" for i in range(chunks))
        return "notes.md", f"# Document\n\n{body}\n"
    if kind == "py":
        lines = max(1, round(10 * scale))
        funcs = "\n\n".join(
            f'def step_{i}(value: int) -> int:\n    """{paragraph(rng, max(8, int(60 * scale)))}"""\n'
            + "".join(f"    value = value * {j} + {i}  # {sentence(rng)}\n" for j in range(lines))
            + "    return value\n"
            for i in range(chunks)
        )
        return "module.py", f'"""Generated module."""\n\n{funcs}'
    if kind == "csv":
        n = chunks * max(1, round(9 * scale))
        rows = "\n".join(f"{i},{rng.choice(WORDS)},{rng.randint(1, 999)},{sentence(rng)}" for i in range(n))
        return "table.csv", "id,item,quantity,note\n" + rows + "\n"
    if kind == "json":
        doc = {
            f"section_{i}": {"title": sentence(rng), "body": paragraph(rng, max(8, int(180 * scale)))}
            for i in range(chunks)
        }
        return "data.json", json.dumps(doc, indent=1)
    if kind == "html":
        body = "".join(f"<h2>Part {i}</h2><p>{paragraph(rng, words)}</p>" for i in range(chunks))
        return "page.html", f"<html><body><h1>Page</h1>{body}</body></html>"
    return "plain.txt", "\n\n".join(paragraph(rng, words) for _ in range(chunks)) + "\n"


def generate_corpus(
    conn: psycopg.Connection, root: Path, files: int, chunks_per_file: int, orgs: int, chunk_tokens: int
) -> int:
    """Files under root, their organisations, users and conversations in the database. Returns bytes written."""
    rng = random.Random(7)
    shutil.rmtree(root, ignore_errors=True)
    kinds = ["md", "txt", "py", "csv", "json", "html"]
    folders = ["uploads", "generated", "attachments"]
    convs: list[tuple[str, str, uuid.UUID]] = []
    for o in range(orgs):
        org = f"org_bench{o}"
        conn.execute("INSERT INTO organizations (id, name) VALUES (%s, %s)", (org, org))
        for u in range(2):
            user = f"user_bench{o}_{u}"
            conn.execute("INSERT INTO users (id) VALUES (%s)", (user,))
            conn.execute(
                "INSERT INTO organization_memberships (id, organization_id, user_id) VALUES (%s, %s, %s)",
                (f"orgmem_{user}", org, user),
            )
            for c in range(5):
                cid = uuid.uuid5(uuid.NAMESPACE_URL, f"{org}/{user}/{c}")
                conn.execute(
                    "INSERT INTO conversations (id, organization_id, user_id) VALUES (%s, %s, %s)", (cid, org, user)
                )
                convs.append((org, user, cid))
    conn.commit()
    written = 0
    previous: list[tuple[str, str]] = []
    per_org = len(convs) // orgs
    for i in range(files):
        org, user, cid = convs[(i % orgs) * per_org + (i // orgs) % per_org]
        folder = root / org / user / str(cid) / "files" / folders[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        if previous and rng.random() < 0.02:
            name, text = rng.choice(previous)
        else:
            name, text = file_text(rng, kinds[i % len(kinds)], chunks_per_file, chunk_tokens)
            previous.append((name, text))
        path = folder / f"{i:06d}-{name}"
        path.write_text(text)
        written += len(text)
    return written


def cogo_pipeline(url: str, root: Path, chunk_tokens: int) -> dict[str, float]:
    from cogo.embed import get_embedder
    from cogo.knowledge.chunk_stage import chunk_files
    from cogo.knowledge.embed_stage import embed_files
    from cogo.workspace.register import register_files

    embedder = get_embedder(MODEL)
    calls0 = embedder.stats.calls
    t0 = time.monotonic()
    with psycopg.connect(url) as conn, psycopg.connect(url) as writer:
        reg = register_files(conn, root, full=True)
        t1 = time.monotonic()
        size = {"chunk_size": chunk_tokens, "chunk_overlap": overlap_for(chunk_tokens)}
        chunks = chunk_files(conn, root, MODEL, **size)  # type: ignore[arg-type]
        t2 = time.monotonic()
        emb = embed_files(conn, get_embedder, MODEL, writer=writer, **size)  # type: ignore[arg-type]
        t3 = time.monotonic()
        rows = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    figures = emb.by_model.get(MODEL)
    return {
        "files": reg.counts()["new"] + reg.counts()["unchanged"],
        "register_s": t1 - t0,
        "chunk_s": t2 - t1,
        "embed_stage_s": t3 - t2,
        "total_s": t3 - t0,
        "chunks": chunks.chunks_written,
        "rows": rows,
        "unique_embedded": figures.texts_embedded if figures else 0,
        "reused": figures.reused_vectors if figures else 0,
        "embed_calls": embedder.stats.calls - calls0,
        "model_s": figures.embed_s if figures else 0.0,
        "write_s": emb.write_s,
    }


def rerun_in_fresh_process(url: str, root: Path, chunk_tokens: int) -> dict[str, float]:
    repo = str(Path(__file__).resolve().parent.parent)
    size = {"chunk_size": chunk_tokens, "chunk_overlap": overlap_for(chunk_tokens)}
    code = (
        f"import sys, time, json; t0 = time.monotonic(); sys.path.insert(0, {repo!r})\n"
        "import pathlib, psycopg\n"
        "from cogo.embed import get_embedder\n"
        "from cogo.knowledge.chunk_stage import chunk_files\n"
        "from cogo.knowledge.embed_stage import embed_files\n"
        "from cogo.workspace.register import register_files\n"
        f"with psycopg.connect({url!r}) as conn:\n"
        f"    r = register_files(conn, pathlib.Path({str(root)!r}), full=True)\n"
        f"    c = chunk_files(conn, pathlib.Path({str(root)!r}), {MODEL!r}, **{size!r})\n"
        f"    e = embed_files(conn, get_embedder, {MODEL!r}, **{size!r})\n"
        "    rows = conn.execute('SELECT count(*) FROM embeddings').fetchone()[0]\n"
        "print(json.dumps({'wall_s': time.monotonic() - t0, 'calls': e.embed_calls, 'hashed': r.bytes_hashed,"
        " 'extracted': c.files_extracted, 'rows_written': e.rows_written, 'rows': rows}))\n"
    )
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.monotonic() - t0
    return result


def naive_embedder(url: str, sample: int) -> dict[str, float]:
    from cogo.embed.local import model_dir

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    with psycopg.connect(url) as conn:
        texts = [r[0] for r in conn.execute("SELECT content FROM file_chunks ORDER BY random() LIMIT %s", (sample,))]
    model = SentenceTransformer(str(model_dir()), device="cpu")
    model.encode(texts[:8])  # warm-up
    t0 = time.monotonic()
    model.encode(texts, batch_size=32)
    elapsed = time.monotonic() - t0
    # The same texts through cogo's embedder (length buckets), for the comparison at equal input.
    from cogo.embed import create_embedder

    ours = create_embedder(MODEL)
    ours.embed(texts[:8])
    t1 = time.monotonic()
    ours.embed(texts)
    return {"texts": len(texts), "naive_s": elapsed, "bucketed_s": time.monotonic() - t1}


def load_vectors(url: str, n: int, chunk_tokens: int) -> dict[str, float]:
    """Top the corpus's own chunks up to n searchable rows for MODEL: each new row carries a corpus chunk's
    text and a vector mostly that chunk's (mixed with another chunk's, plus noise), on FILES_PER_ORG file rows
    per organisation, bulk-written with binary COPY; then the model's HNSW index rebuilt over all of them in
    parallel."""
    from pgvector.psycopg import register_vector

    rng = np.random.default_rng(11)
    profile = profile_for(chunk_tokens)
    with psycopg.connect(url) as conn:
        register_vector(conn)
        places = conn.execute(
            "SELECT DISTINCT ON (organization_id) organization_id, user_id, id FROM conversations "
            "ORDER BY organization_id, id"
        ).fetchall()
        file_ids = {
            org: [uuid.uuid5(uuid.NAMESPACE_URL, f"bench-vectors/{org}/{k}") for k in range(FILES_PER_ORG)]
            for org, _, _ in places
        }
        # A previous load's copies go (a --vectors-only re-run); the corpus's own chunks stay.
        gone = conn.execute(
            "DELETE FROM embeddings WHERE file_id = ANY(%s)", ([f for ids in file_ids.values() for f in ids],)
        ).rowcount
        conn.commit()
        if gone:
            conn.autocommit = True
            conn.execute("VACUUM embeddings")
            conn.autocommit = False
        real = conn.execute(
            "SELECT DISTINCT ON (content_sha256) content, content_sha256, embedding FROM embeddings "
            "WHERE model = %s AND file_id IS NOT NULL ORDER BY content_sha256 LIMIT 200000",
            (MODEL,),
            binary=True,
        ).fetchall()
        contents = [r[0] for r in real]
        shas = [r[1] for r in real]
        base = np.array([r[2].to_numpy() for r in real], dtype=np.float32)
        have = conn.execute("SELECT count(*) FROM embeddings WHERE model = %s", (MODEL,)).fetchone()[0]
        todo = max(0, n - have)
        conn.execute("DROP INDEX IF EXISTS embeddings_hnsw_local_all_minilm_l6_v2")
        folders = (("upload", "uploads"), ("generated", "generated"), ("attachment", "attachments"))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO files (id, organization_id, user_id, conversation_id, kind, storage_path, filename, "
                "size_bytes, mime_type) VALUES (%s, %s, %s, %s, %s, %s, %s, 4096, 'text/markdown') "
                "ON CONFLICT DO NOTHING",
                [
                    (
                        fid,
                        org,
                        user,
                        conv,
                        folders[k % 3][0],
                        f"{org}/{user}/{conv}/files/{folders[k % 3][1]}/{name}",
                        name,
                    )
                    for org, user, conv in places
                    for k, fid in enumerate(file_ids[org])
                    for name in [f"bench-{k:05d}.md"]
                ],
            )
        # Every organisation's default index answers (as file_embeddings leaves it).
        conn.execute(
            "INSERT INTO knowledge_indexes (organization_id, model, chunk_profile, state, ready_at) "
            "SELECT id, %s, %s, 'ready', now() FROM organizations ON CONFLICT DO NOTHING",
            (MODEL, profile),
        )
        conn.commit()
        org_ids = sorted(file_ids)
        t0 = time.monotonic()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY embeddings (organization_id, file_id, chunk_id, chunk_index, content, content_sha256, position, "
                "token_count, chunker_version, model, dims, embedding, chunk_profile) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(
                [
                    "text",
                    "uuid",
                    "text",
                    "int4",
                    "text",
                    "text",
                    "jsonb",
                    "int4",
                    "text",
                    "text",
                    "int4",
                    "vector",
                    "text",
                ]
            )
            position = Jsonb({"heading": "Bench"})
            version = profile.split("/")[0]
            for start in range(0, todo, 10000):
                m = min(10000, todo - start)
                picks = rng.integers(0, len(base), m)
                # Mostly the chunk whose text the row carries, partly another one, plus noise: new points
                # around the corpus's own, not tight clusters of near-duplicates.
                mix = rng.uniform(0.55, 0.95, (m, 1)).astype(np.float32)
                others = base[rng.integers(0, len(base), m)]
                vecs = mix * base[picks] + (1 - mix) * others
                vecs += rng.normal(0, NOISE, (m, base.shape[1])).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                for j in range(m):
                    i = start + j
                    org = org_ids[i % len(org_ids)]
                    files_of_org = file_ids[org]
                    copy.write_row(
                        (
                            org,
                            files_of_org[(i // len(org_ids)) % FILES_PER_ORG],
                            f"{i:032x}",
                            i,
                            contents[picks[j]],
                            shas[picks[j]],
                            position,
                            chunk_tokens,
                            version,
                            MODEL,
                            384,
                            vecs[j],
                            profile,
                        )
                    )
        conn.commit()
        copy_s = time.monotonic() - t0
        workers = max(1, (os.cpu_count() or 2) - 1)  # the leader builds too
        conn.execute("SET maintenance_work_mem = '6GB'")
        conn.execute(f"SET max_parallel_maintenance_workers = {workers}")
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        t1 = time.monotonic()
        conn.execute(
            "CREATE INDEX embeddings_hnsw_local_all_minilm_l6_v2 ON embeddings "
            "USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE model = 'local:all-MiniLM-L6-v2'"
        )
        conn.commit()
        build_s = time.monotonic() - t1
        conn.execute("ANALYZE embeddings")
        conn.commit()
        rows = conn.execute("SELECT count(*) FROM embeddings WHERE model = %s", (MODEL,)).fetchone()[0]
    return {
        "rows": rows,
        "copied": todo,
        "copy_s": copy_s,
        "rows_per_s": todo / copy_s if copy_s else 0.0,
        "hnsw_build_s": build_s,
        "base": len(base),
        "workers": workers,
        "notices": notices,
    }


# The shared per-model index as the search used it before organisations had their own: `organization_id || ''`
# keeps the planner from proving an organisation's partial index applies, so only the shared one can serve.
SHARED_INDEX_SQL = (
    "WITH nearest AS MATERIALIZED (SELECT e.id, (e.embedding::vector(384)) <=> %s::vector(384) AS distance "
    "FROM embeddings e WHERE e.organization_id || '' = %s AND e.model = 'local:all-MiniLM-L6-v2' "
    "AND e.chunk_profile = %s AND e.file_id IS NOT NULL ORDER BY distance LIMIT %s) "
    "SELECT id FROM nearest ORDER BY distance"
)


def _timed_vector_searches(
    conn: psycopg.Connection, qs: list[np.ndarray], orgs: int, profile: str, shared: bool
) -> tuple[list[float], list[list[int]], set[str]]:
    """cogo's own vector leg (search.vector_leg_sql: the organisation's own HNSW index when it has one, else the
    shared per-model one, with the settings search_chunks uses) for each query, or (`shared`) the shared index
    with the filter: latencies, ids, indexes planned."""
    from psycopg import sql

    from cogo.knowledge.search import Leg, set_ef_search, vector_leg_sql

    latencies, results, indexes = [], [], set()
    for i, q in enumerate(qs):
        org = f"org_bench{i % orgs}"
        with conn.transaction():
            conn.execute(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.scan_mem_multiplier', %s, true), set_config('hnsw.ef_search', %s, true)",
                (str(HNSW_SCAN_MEM_MULTIPLIER), str(FILTERED_EF_SEARCH)),
            )
            t0 = time.perf_counter()
            if shared:
                query, params = sql.SQL(SHARED_INDEX_SQL), [org, profile, 10]  # type: ignore[assignment]
            else:
                query, params, ef_search = vector_leg_sql(conn, Leg(MODEL, profile), org, 10)
                set_ef_search(conn, ef_search)
            got = [r[0] for r in conn.execute(query, [q.tolist(), *params])]
            latencies.append((time.perf_counter() - t0) * 1000)
            if i < orgs:
                plan = conn.execute(sql.SQL("EXPLAIN ") + query, [q.tolist(), *params]).fetchall()
                indexes |= set(re.findall(r"Index Scan using (\S+)", "\n".join(r[0] for r in plan)))
        results.append(got)
    return latencies, results, indexes


def search_figures(
    url: str, queries: int, recall_queries: int, orgs: int, chunk_tokens: int, *, shared: bool = False
) -> dict[str, object]:
    from pgvector.psycopg import register_vector

    rng = np.random.default_rng(5)
    profile = profile_for(chunk_tokens)
    with psycopg.connect(url) as conn:
        register_vector(conn)
        # Query i searches organisation i % orgs, near one of that organisation's own chunks (the passage the
        # user is after is in their organisation's files).
        per_org = -(-queries // orgs)
        own = {
            o: [
                r[0].to_numpy()
                for r in conn.execute(
                    # Uniform over the organisation's rows (SYSTEM sampling with a LIMIT took the first pages:
                    # the corpus's own chunks, whose repeated sentences are exact ties, which made recall by id
                    # a coin toss between identical vectors).
                    "SELECT embedding FROM embeddings TABLESAMPLE BERNOULLI (0.5) REPEATABLE (7) "
                    "WHERE organization_id = %s AND model = %s AND file_id IS NOT NULL ORDER BY random() LIMIT %s",
                    (f"org_bench{o}", MODEL, per_org),
                    binary=True,
                )
            ]
            for o in range(orgs)
        }
        conn.commit()
        qs = [
            (own[i % orgs][(i // orgs) % len(own[i % orgs])] + rng.normal(0, NOISE, 384)).astype(np.float32)
            for i in range(queries)
        ]
        # Latency first, then recall: the exact searches read the whole table and would evict the index
        # from the cache between timed queries.
        latencies, results, indexes = _timed_vector_searches(conn, qs, orgs, profile, shared)
        short = sum(len(got) < 10 for got in results)  # an iterative scan that gave up early costs recall below
        # Exact top 10 per organisation in numpy over all its vectors (one read per organisation, instead of
        # a sequential scan of the whole table per query).
        recalls, tied_recalls = [], []
        by_org: dict[str, list[int]] = {}
        for i in range(min(recall_queries, len(qs))):
            by_org.setdefault(f"org_bench{i % orgs}", []).append(i)
        for org, indices in by_org.items():
            rows = conn.execute(
                "SELECT id, embedding FROM embeddings WHERE organization_id = %s AND model = %s "
                "AND chunk_profile = %s AND file_id IS NOT NULL",
                (org, MODEL, profile),
                binary=True,
            ).fetchall()
            ids = np.array([r[0] for r in rows])
            matrix = np.array([r[1].to_numpy() for r in rows], dtype=np.float32)
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
            position = {row_id: j for j, row_id in enumerate(ids.tolist())}
            for i in indices:
                q = qs[i] / np.linalg.norm(qs[i])
                distances = 1.0 - matrix @ q
                order = np.argsort(distances)[:10]
                exact = set(ids[order].tolist())
                recalls.append(len(set(results[i]) & exact) / 10)
                # As ann-benchmarks counts it: a result as near as the 10th exact neighbour (within 1e-3) is one
                # of the 10 nearest; among near-equal distances, which one comes back is a coin toss.
                tenth = distances[order[-1]] + 1e-3
                tied_recalls.append(sum(distances[position[r]] <= tenth for r in results[i]) / 10)
        conn.commit()
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)],
        "recall": statistics.mean(recalls),
        "recall_ties": statistics.mean(tied_recalls),
        "indexes": sorted(indexes),
        "short_results": short,
    }


def hybrid_figures(url: str, queries: int, orgs: int) -> dict[str, float]:
    from cogo.knowledge.search import search_chunks

    hybrid = []
    with psycopg.connect(url) as conn:
        search_chunks(conn, "org_bench0", "warm up the model", 10, default_model=MODEL)  # loads the model: once
        for i in range(min(50, queries)):
            t0 = time.perf_counter()
            hits = search_chunks(
                conn, f"org_bench{i % orgs}", " ".join(random.sample(WORDS[:1000], 3)), 10, default_model=MODEL
            )
            hybrid.append((time.perf_counter() - t0) * 1000)
            assert len(hits) == 10
    hybrid.sort()
    return {"hybrid_p50_ms": statistics.median(hybrid), "hybrid_p99_ms": hybrid[max(0, int(len(hybrid) * 0.99) - 1)]}


def peer_llamaindex(server_url: str, root: Path, chunk_tokens: int, embed_batch: int) -> dict[str, float]:
    """LlamaIndex's IngestionPipeline on the whole corpus, twice (the second run deduplicates through its
    docstore). Timed from reading the files, like cogo's end to end. Metadata (paths, dates) is kept out of
    the embedded text and the chunk budget, so both sides embed the same text."""
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.postgres import PGVectorStore
    from sqlalchemy.engine import make_url

    from cogo.embed.local import model_dir

    llama_url = fresh_database(server_url, DB_NAME + "_llama")
    u = make_url(llama_url)
    socket_dir = dict(u.query).get("host")
    sync_url = u.set(drivername="postgresql+psycopg2")
    async_url = u.set(drivername="postgresql+asyncpg")
    if socket_dir:  # the embedded server listens on a Unix socket
        async_url = async_url.set(query={"host": socket_dir})
    store = PGVectorStore.from_params(
        connection_string=sync_url,
        async_connection_string=async_url,
        table_name="llama_chunks",
        embed_dim=384,
    )
    embed = HuggingFaceEmbedding(model_name=str(model_dir()), device="cpu", embed_batch_size=embed_batch)
    embed.get_text_embedding("warm-up")  # both sides start with the model loaded
    docstore = SimpleDocumentStore()

    def run() -> tuple[float, int]:
        t0 = time.monotonic()
        docs = SimpleDirectoryReader(str(root), recursive=True, filename_as_id=True).load_data()
        for doc in docs:
            doc.excluded_embed_metadata_keys = list(doc.metadata)
            doc.excluded_llm_metadata_keys = list(doc.metadata)
        pipeline = IngestionPipeline(
            transformations=[SentenceSplitter(chunk_size=chunk_tokens, chunk_overlap=overlap_for(chunk_tokens)), embed],
            vector_store=store,
            docstore=docstore,
        )
        nodes = pipeline.run(documents=docs)
        return time.monotonic() - t0, len(nodes)

    first_s, chunks = run()
    second_s, _ = run()
    with psycopg.connect(llama_url) as conn:
        rows = conn.execute("SELECT count(*) FROM data_llama_chunks").fetchone()[0]
    return {"first_s": first_s, "chunks": chunks, "second_s": second_s, "rows": rows}


def measure_cogo(url: str, root: Path, args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float]]:
    from cogo.embed import get_embedder

    get_embedder(MODEL).embed(["warm-up"])  # the model loaded before timing, as on the peer's side
    e2e = cogo_pipeline(url, root, args.chunk_tokens)
    cps = e2e["chunks"] / e2e["total_s"]
    print(
        f"cogo end to end: {e2e['chunks']} chunks of up to {args.chunk_tokens} tokens from {e2e['files']} files in "
        f"{e2e['total_s']:.1f} s = {cps:.1f} chunks/s (register {e2e['register_s']:.1f} s, extract+chunk "
        f"{e2e['chunk_s']:.1f} s, embed+write {e2e['embed_stage_s']:.1f} s; model {e2e['model_s']:.1f} s; "
        f"{e2e['unique_embedded']} unique texts embedded, {e2e['reused']} rows reused a vector; "
        f"{e2e['embed_calls']} model calls)",
        flush=True,
    )
    if not args.peer_only and args.naive_sample:
        naive = naive_embedder(url, args.naive_sample)
        naive_cps = naive["texts"] / naive["naive_s"]
        bucketed_cps = naive["texts"] / naive["bucketed_s"]
        print(
            f"embedder alone on {naive['texts']} of the same chunks: naive encode(batch 32) {naive_cps:.1f} "
            f"chunks/s; cogo's length buckets {bucketed_cps:.1f} chunks/s; cogo end to end / naive = "
            f"{cps / naive_cps:.2f}x",
            flush=True,
        )
    rerun = rerun_in_fresh_process(url, root, args.chunk_tokens)
    print(
        f"re-run, nothing changed, fresh process: {rerun['process_s']:.2f} s wall (limit {RERUN_LIMIT_S} s), "
        f"{rerun['calls']} embedding calls (limit 0), {rerun['hashed']} bytes hashed, "
        f"{rerun['extracted']} files extracted, {rerun['rows_written']} rows written",
        flush=True,
    )
    return e2e, rerun


def print_peer(p: dict[str, float], e2e: dict[str, float], rerun: dict[str, float], files: int, batch: int) -> None:
    llama_cps = p["chunks"] / p["first_s"]
    cogo_cps = e2e["chunks"] / e2e["total_s"]
    print(f"peer, the same {files} files, same model, this run (LlamaIndex embed_batch_size {batch}):")
    print(f"  {'':12} {'time':>9} {'chunks':>7} {'chunks/s':>9} {'re-run':>8} {'rows after 2 runs':>18}")
    print(
        f"  {'LlamaIndex':12} {p['first_s']:8.1f}s {p['chunks']:7d} {llama_cps:9.1f} "
        f"{p['second_s']:7.1f}s {p['rows']:18d}   (re-run in the same process: in-memory docstore)"
    )
    print(
        f"  {'cogo':12} {e2e['total_s']:8.1f}s {e2e['chunks']:7d} {cogo_cps:9.1f} "
        f"{rerun['process_s']:7.1f}s {rerun['rows']:18d}   (re-run in a fresh process)"
    )
    print(
        f"  cogo / LlamaIndex chunks per second: {cogo_cps / llama_cps:.2f}x (target {PEER_RATIO_TARGET}x)", flush=True
    )


def _print_vector(label: str, s: dict[str, object], args: argparse.Namespace) -> None:
    print(
        f"vector search ({label}), {args.vectors} vectors, org filter (1 of {args.orgs}), k=10: "
        f"p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms (limit {P99_LIMIT_MS}); recall@10 vs exact "
        f"{s['recall']:.3f} by id, {s['recall_ties']:.3f} counting ties within 1e-3 of the 10th distance "
        f"(limit {RECALL_LIMIT}); indexes planned: {', '.join(s['indexes']) or 'none'}; "
        f"queries answered with fewer than 10 rows: {s['short_results']}",
        flush=True,
    )


def print_search(url: str, args: argparse.Namespace) -> None:
    """Search through the shared per-model index, then build the organisations' own indexes if missing
    (tenant_vector_indexes) and search through cogo's search path, then hybrid search_chunks."""
    from cogo.knowledge.tenant_indexes import refresh_tenant_indexes

    s = search_figures(url, args.queries, args.recall_queries, args.orgs, args.chunk_tokens, shared=True)
    _print_vector(f"shared per-model index, ef_search {FILTERED_EF_SEARCH}", s, args)
    with psycopg.connect(url, autocommit=True) as admin_conn:
        t0 = time.monotonic()
        report = refresh_tenant_indexes(admin_conn, build_memory="2GB")
        built = report.created
    if built:
        rows = sum(int(b["rows"]) for b in built)
        print(
            f"tenant_vector_indexes: {len(built)} organisation indexes over {rows} vectors built CONCURRENTLY in "
            f"{time.monotonic() - t0:.1f} s ({rows / (time.monotonic() - t0):.0f} vectors/s)",
            flush=True,
        )
    s = search_figures(url, args.queries, args.recall_queries, args.orgs, args.chunk_tokens)
    _print_vector(f"each organisation's own index, ef_search {search_module.TENANT_EF_SEARCH}", s, args)
    h = hybrid_figures(url, args.queries, args.orgs)
    print(
        f"hybrid search_chunks (query embedding + vector + full text + RRF): p50 {h['hybrid_p50_ms']:.1f} ms, "
        f"p99 {h['hybrid_p99_ms']:.1f} ms",
        flush=True,
    )


def vectors_phase(url: str, args: argparse.Namespace) -> None:
    load = load_vectors(url, args.vectors, args.chunk_tokens)
    print(
        f"bulk write: {load['copied']} rows (384 dims, text, generated tsvector, btree and GIN indexes maintained) "
        f"by binary COPY in {load['copy_s']:.1f} s = {load['rows_per_s']:.0f} rows/s; HNSW build over "
        f"{load['rows']} rows {load['hnsw_build_s']:.1f} s (leader + {load['workers']} parallel worker(s))"
        + "".join(f"\n  notice: {n}" for n in load["notices"]),
        flush=True,
    )
    args.vectors = load["rows"]
    print_search(url, args)
    print(
        f"searchable chunks kept: {load['rows']} in database {DB_NAME} ({redact(url)}; the full URL: `cogo env` "
        f"with the same COGO_HOME, database {DB_NAME}); organisations org_bench0..org_bench{args.orgs - 1}, "
        f"users user_bench<o>_0 and _1; model {MODEL}, profile {profile_for(args.chunk_tokens)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--chunks-per-file", type=int, default=10)
    parser.add_argument("--chunk-tokens", type=int, default=256, help="chunk size for cogo and LlamaIndex alike")
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--naive-sample", type=int, default=1000, help="chunks for the naive-embedder figure (0: skip)")
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--recall-queries", type=int, default=100)
    parser.add_argument(
        "--ef-search",
        type=int,
        default=TENANT_EF_SEARCH,
        help="hnsw.ef_search over an organisation's own index (default: what search_chunks uses)",
    )
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument(
        "--peer-embed-batch", type=int, default=10, help="LlamaIndex's embed_batch_size (10: LlamaIndex's default)"
    )
    parser.add_argument("--skip-vectors", action="store_true")
    parser.add_argument("--peer-only", action="store_true", help="corpus, cogo end to end and the peer only")
    parser.add_argument("--search-only", action="store_true", help="search figures on the vectors already loaded")
    parser.add_argument(
        "--vectors-only", action="store_true", help="phase 6 alone, on the database a previous run left"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cogo-bench-knowledge"))
    parser.add_argument(
        "--database",
        default=DB_NAME,
        help="database for a full run, dropped and created anew (another name keeps the 1M vectors of "
        f"{DB_NAME} for --search-only and bench_service.py)",
    )
    args = parser.parse_args()

    server_url = start_database(Settings.from_env())
    search_module.TENANT_EF_SEARCH = args.ef_search  # a tuning knob: search_chunks reads it on every search
    load_text_sources(args.workdir)
    if args.search_only:
        print_search(with_database(server_url, DB_NAME), args)
        return
    started = time.monotonic()
    if args.vectors_only:
        vectors_phase(with_database(server_url, DB_NAME), args)
        print(f"total {time.monotonic() - started:.0f} s")
        return
    url = fresh_database(server_url, args.database)
    root = args.workdir / "workspaces"
    print(f"database {args.database}; workspace {root}; cores {os.cpu_count()}; chunks of {args.chunk_tokens} tokens")
    print(f"text: {len(SENTENCES):,} distinct sentences from the docstrings and comments of installed Python files")

    with psycopg.connect(url) as conn:
        t0 = time.monotonic()
        size = generate_corpus(conn, root, args.files, args.chunks_per_file, args.orgs, args.chunk_tokens)
    print(f"corpus: {args.files} files, {size / 1e6:.1f} MB written in {time.monotonic() - t0:.1f} s", flush=True)

    e2e, rerun = measure_cogo(url, root, args)
    if not args.skip_peer:
        peer = peer_llamaindex(server_url, root, args.chunk_tokens, args.peer_embed_batch)
        print_peer(peer, e2e, rerun, args.files, args.peer_embed_batch)
    if not args.skip_vectors and not args.peer_only:
        vectors_phase(url, args)
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
