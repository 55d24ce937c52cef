"""Benchmark workspace files to searchable knowledge (issue 7). Prints each figure next to its limit.

    python bench/bench_knowledge.py                       # 5,000 files x 10 chunks, 1M vectors, LlamaIndex on 300 files
    python bench/bench_knowledge.py --files 500 --chunks-per-file 10 --vectors 200000 --peer-files 100

Phases, all against a fresh database (`cogo_bench_knowledge` on the server of COGO_DATABASE_URL, else the
embedded one under COGO_HOME) and a generated workspace under --workdir:
 1. corpus: --files files (Markdown, text, Python, CSV, JSON, HTML) of about --chunks-per-file chunks of 256
    tokens each, over --orgs organisations; 2% are copies of another file (uploads happen twice);
 2. cogo end to end (register, extract, chunk, embed with all-MiniLM-L6-v2, binary COPY): chunks per second;
 3. the embedder alone, naively (SentenceTransformer.encode, batch 32) on a sample of the same chunks;
 4. a re-run with nothing changed from a fresh process: wall time and embedding calls (limits: 2 s, 0);
 5. --vectors vectors (real chunk vectors plus noise) bulk-written with binary COPY, the HNSW index built,
    then vector search p50/p99 with the organisation filter and recall@10 against exact search
    (limits: p99 under 50 ms, recall at least 0.95), and hybrid search_chunks latency;
 6. LlamaIndex IngestionPipeline (SentenceSplitter 256/32, HuggingFaceEmbedding on the same model, PGVectorStore)
    against cogo on the same --peer-files files, in this run: time, re-run time, rows after two runs
    (needs `pip install -e '.[bench]'`; --skip-peer to leave it out).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cogo.config import Settings
from cogo.db import admin
from cogo.db.urls import with_database
from cogo.services import database_url

DB_NAME = "cogo_bench_knowledge"
MODEL = "local:all-MiniLM-L6-v2"
RERUN_LIMIT_S = 2.0
P99_LIMIT_MS = 50.0
RECALL_LIMIT = 0.95
PEER_RATIO_TARGET = 1.2
_VOCABULARY = (
    "robot servo motor gear supplier approval ringi budget forecast quarter revenue token refresh rotate deploy "
    "production script sandbox review plan report handbook onboarding security holiday invoice shipment warehouse "
    "inventory customer contract renewal price discount margin latency throughput cluster replica backup restore "
    "migration schema index vector search embedding chunk model agent conversation workspace upload generated "
    "attachment director manager engineer analyst market stock share dividend risk compliance audit policy"
)
WORDS = tuple(_VOCABULARY.split())


def fresh_database(server_url: str, name: str = DB_NAME) -> str:
    return admin.recreate_database(server_url, name)


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 20))]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, tokens: int) -> str:
    out, n = [], 0
    while n < tokens:
        s = sentence(rng)
        out.append(s)
        n += len(s.split()) + 1
    return " ".join(out)


def file_text(rng: random.Random, kind: str, chunks: int) -> tuple[str, str]:
    if kind == "md":
        body = "\n\n".join(f"## Section {i}\n\n{paragraph(rng, 200)}" for i in range(chunks))
        return "notes.md", f"# Document\n\n{body}\n"
    if kind == "py":
        funcs = "\n\n".join(
            f'def step_{i}(value: int) -> int:\n    """{paragraph(rng, 60)}"""\n'
            + "".join(f"    value = value * {j} + {i}  # {sentence(rng)}\n" for j in range(10))
            + "    return value\n"
            for i in range(chunks)
        )
        return "module.py", f'"""Generated module."""\n\n{funcs}'
    if kind == "csv":
        rows = "\n".join(f"{i},{rng.choice(WORDS)},{rng.randint(1, 999)},{sentence(rng)}" for i in range(chunks * 9))
        return "table.csv", "id,item,quantity,note\n" + rows + "\n"
    if kind == "json":
        doc = {f"section_{i}": {"title": sentence(rng), "body": paragraph(rng, 180)} for i in range(chunks)}
        return "data.json", json.dumps(doc, indent=1)
    if kind == "html":
        body = "".join(f"<h2>Part {i}</h2><p>{paragraph(rng, 200)}</p>" for i in range(chunks))
        return "page.html", f"<html><body><h1>Page</h1>{body}</body></html>"
    return "plain.txt", "\n\n".join(paragraph(rng, 200) for _ in range(chunks)) + "\n"


def generate_corpus(conn: psycopg.Connection, root: Path, files: int, chunks_per_file: int, orgs: int) -> int:
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
            name, text = file_text(rng, kinds[i % len(kinds)], chunks_per_file)
            previous.append((name, text))
        path = folder / f"{i:06d}-{name}"
        path.write_text(text)
        written += len(text)
    return written


def cogo_pipeline(url: str, root: Path) -> dict[str, float]:
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
        chunks = chunk_files(conn, root, MODEL)
        t2 = time.monotonic()
        emb = embed_files(conn, get_embedder, MODEL, writer=writer)
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


def rerun_in_fresh_process(url: str, root: Path) -> dict[str, float]:
    code = (  # noqa: UP031
        "import sys, time, json; t0 = time.monotonic(); sys.path.insert(0, %r)\n"
        "import psycopg\n"
        "from cogo.embed import get_embedder\n"
        "from cogo.knowledge.chunk_stage import chunk_files\n"
        "from cogo.knowledge.embed_stage import embed_files\n"
        "from cogo.workspace.register import register_files\n"
        "with psycopg.connect(%r) as conn:\n"
        "    r = register_files(conn, __import__('pathlib').Path(%r), full=True)\n"
        "    c = chunk_files(conn, __import__('pathlib').Path(%r), %r)\n"
        "    e = embed_files(conn, get_embedder, %r)\n"
        "print(json.dumps({'wall_s': time.monotonic() - t0, 'calls': e.embed_calls, 'hashed': r.bytes_hashed,"
        " 'extracted': c.files_extracted, 'rows_written': e.rows_written}))\n"
    ) % (str(Path(__file__).resolve().parent.parent), url, str(root), str(root), MODEL, MODEL)
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


def load_vectors(url: str, n: int, orgs: int) -> dict[str, float]:
    """n rows for model MODEL: real chunk vectors plus noise, spread over orgs, on placeholder file rows."""
    from pgvector.psycopg import register_vector

    rng = np.random.default_rng(11)
    with psycopg.connect(url) as conn:
        register_vector(conn)
        base = np.array(
            [r[0].to_numpy() for r in conn.execute("SELECT embedding FROM embeddings LIMIT 20000", binary=True)],
            dtype=np.float32,
        )
        contents = [r[0] for r in conn.execute("SELECT content FROM embeddings LIMIT 2000")]
        conn.execute("DELETE FROM embeddings")
        conn.execute("DROP INDEX IF EXISTS embeddings_hnsw_local_all_minilm_l6_v2")
        file_ids: dict[str, list[uuid.UUID]] = {}
        for o in range(orgs):
            org = f"org_bench{o}"
            user = f"user_bench{o}_0"
            ids = [uuid.uuid4() for _ in range(200)]
            with conn.cursor().copy(
                "COPY files (id, organization_id, user_id, kind, storage_path, filename) FROM STDIN"
            ) as copy:
                for k, fid in enumerate(ids):
                    copy.write_row((fid, org, user, "upload", f"{org}/{user}/bench/files/uploads/v{k}.txt", "v.txt"))
            file_ids[org] = ids
        # Every organisation's default index answers (as file_embeddings leaves it).
        conn.execute(
            "INSERT INTO knowledge_indexes (organization_id, model, chunk_profile, state, ready_at) "
            "SELECT id, %s, 'c1/256/32', 'ready', now() FROM organizations ON CONFLICT DO NOTHING",
            (MODEL,),
        )
        conn.commit()
        t0 = time.monotonic()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY embeddings (organization_id, file_id, chunk_id, chunk_index, content, content_sha256, model, "
                "dims, embedding, chunk_profile) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["text", "uuid", "text", "int4", "text", "text", "text", "int4", "vector", "text"])
            for start in range(0, n, 10000):
                m = min(10000, n - start)
                picks = base[rng.integers(0, len(base), m)]
                vecs = picks + rng.normal(0, 0.05, picks.shape).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                for j in range(m):
                    i = start + j
                    org = f"org_bench{i % orgs}"
                    copy.write_row(
                        (
                            org,
                            file_ids[org][i % 200],
                            f"{i:032x}",
                            i,
                            contents[i % len(contents)],
                            f"{i:064x}",
                            MODEL,
                            384,
                            vecs[j],
                            "c1/256/32",
                        )
                    )
        conn.commit()
        copy_s = time.monotonic() - t0
        conn.execute("SET maintenance_work_mem = '3GB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        t1 = time.monotonic()
        conn.execute(
            "CREATE INDEX embeddings_hnsw_local_all_minilm_l6_v2 ON embeddings "
            "USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE model = 'local:all-MiniLM-L6-v2'"
        )
        conn.commit()
        build_s = time.monotonic() - t1
        conn.execute("ANALYZE embeddings")
        conn.commit()
    return {"rows": n, "copy_s": copy_s, "rows_per_s": n / copy_s, "hnsw_build_s": build_s, "base": len(base)}


VECTOR_SQL = (
    "WITH nearest AS MATERIALIZED (SELECT e.id, (e.embedding::vector(384)) <=> %s::vector(384) AS distance "
    "FROM embeddings e WHERE e.organization_id = %s AND e.model = 'local:all-MiniLM-L6-v2' "
    "AND e.chunk_profile = 'c1/256/32' AND e.file_id IS NOT NULL ORDER BY distance LIMIT 10) "
    "SELECT id FROM nearest ORDER BY distance"
)


def search_figures(url: str, queries: int, recall_queries: int, orgs: int) -> dict[str, float]:
    from pgvector.psycopg import register_vector

    from cogo.knowledge.search import search_chunks

    rng = np.random.default_rng(5)
    with psycopg.connect(url) as conn:
        register_vector(conn)
        sample = [
            r[0].to_numpy()
            for r in conn.execute("SELECT embedding FROM embeddings TABLESAMPLE SYSTEM (1) LIMIT 2000", binary=True)
        ]
        qs = [(q + rng.normal(0, 0.05, q.shape)).astype(np.float32) for q in sample[:queries]]
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        conn.execute("SET hnsw.ef_search = 100")
        latencies, recalls = [], []
        plan = conn.execute("EXPLAIN " + VECTOR_SQL, (qs[0].tolist(), "org_bench0")).fetchall()
        uses_hnsw = any("hnsw" in r[0] for r in plan)
        # Latency first, then recall: the exact searches read the whole table and would evict the index
        # from the cache between timed queries.
        results = []
        for i, q in enumerate(qs):
            org = f"org_bench{i % orgs}"
            t0 = time.perf_counter()
            got = [r[0] for r in conn.execute(VECTOR_SQL, (q.tolist(), org))]
            latencies.append((time.perf_counter() - t0) * 1000)
            assert len(got) == 10
            results.append(got)
        for i, q in enumerate(qs[:recall_queries]):
            with conn.transaction():
                conn.execute("SET LOCAL enable_indexscan = off")
                conn.execute("SET LOCAL enable_bitmapscan = off")
                exact = [r[0] for r in conn.execute(VECTOR_SQL, (q.tolist(), f"org_bench{i % orgs}"))]
            recalls.append(len(set(results[i]) & set(exact)) / max(1, len(exact)))
        conn.commit()
        hybrid = []
        for i in range(min(50, queries)):
            t0 = time.perf_counter()
            hits = search_chunks(conn, f"org_bench{i % orgs}", " ".join(random.sample(WORDS, 3)), 10)
            hybrid.append((time.perf_counter() - t0) * 1000)
            assert len(hits) == 10
    latencies.sort()
    hybrid.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "recall": statistics.mean(recalls),
        "hybrid_p50_ms": statistics.median(hybrid),
        "hybrid_p99_ms": hybrid[int(len(hybrid) * 0.99) - 1],
        "uses_hnsw": uses_hnsw,
    }


def peer_llamaindex(server_url: str, root: Path, files: int) -> dict[str, float]:
    """LlamaIndex on the first `files` files, then cogo on the same files (fresh databases for both)."""
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.postgres import PGVectorStore
    from sqlalchemy.engine import make_url

    from cogo.embed.local import model_dir

    subset = sorted(p for p in root.rglob("*") if p.is_file())[:files]
    peer_root = root.parent / "peer_corpus"
    shutil.rmtree(peer_root, ignore_errors=True)
    for p in subset:
        target = peer_root / p.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, target)
    # LlamaIndex
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
    embed = HuggingFaceEmbedding(model_name=str(model_dir()), device="cpu")
    docstore = SimpleDocumentStore()

    def run() -> float:
        docs = SimpleDirectoryReader(str(peer_root), recursive=True, filename_as_id=True).load_data()
        pipeline = IngestionPipeline(
            transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=32), embed],
            vector_store=store,
            docstore=docstore,
        )
        t0 = time.monotonic()
        nodes = pipeline.run(documents=docs)
        run.nodes = len(nodes)  # type: ignore[attr-defined]
        return time.monotonic() - t0

    llama_first = run()
    llama_nodes = run.nodes  # type: ignore[attr-defined]
    llama_second = run()
    with psycopg.connect(llama_url) as conn:
        llama_rows = conn.execute("SELECT count(*) FROM data_llama_chunks").fetchone()[0]
    # cogo on the same files
    cogo_url = fresh_database(server_url, DB_NAME + "_peer")
    with psycopg.connect(cogo_url) as conn:
        for org in sorted({p.relative_to(root).parts[0] for p in subset}):
            conn.execute("INSERT INTO organizations (id, name) VALUES (%s, %s)", (org, org))
        for _org, user in sorted({p.relative_to(root).parts[:2] for p in subset}):
            conn.execute("INSERT INTO users (id) VALUES (%s) ON CONFLICT DO NOTHING", (user,))
        for org, user, cid in sorted({p.relative_to(root).parts[:3] for p in subset}):
            conn.execute(
                "INSERT INTO conversations (id, organization_id, user_id) VALUES (%s, %s, %s)", (cid, org, user)
            )
    from cogo.embed import get_embedder

    get_embedder(MODEL).embed(["warm-up"])  # both sides start with the model loaded
    first = cogo_pipeline(cogo_url, peer_root)
    second = cogo_pipeline(cogo_url, peer_root)
    return {
        "files": len(subset),
        "llama_first_s": llama_first,
        "llama_chunks": llama_nodes,
        "llama_second_s": llama_second,
        "llama_rows": llama_rows,
        "cogo_first_s": first["total_s"],
        "cogo_chunks": first["chunks"],
        "cogo_second_s": second["total_s"],
        "cogo_rows": second["rows"],
    }


def measure_cogo(url: str, root: Path, args: argparse.Namespace) -> None:
    e2e = cogo_pipeline(url, root)
    cps = e2e["chunks"] / e2e["total_s"]
    print(
        f"cogo end to end: {e2e['chunks']} chunks from {e2e['files']} files in {e2e['total_s']:.1f} s = "
        f"{cps:.1f} chunks/s (register {e2e['register_s']:.1f} s, extract+chunk {e2e['chunk_s']:.1f} s, "
        f"embed+write {e2e['embed_stage_s']:.1f} s; model {e2e['model_s']:.1f} s; {e2e['unique_embedded']} "
        f"unique texts embedded, {e2e['reused']} rows reused a vector; {e2e['embed_calls']} model calls)"
    )
    naive = naive_embedder(url, args.naive_sample)
    naive_cps = naive["texts"] / naive["naive_s"]
    bucketed_cps = naive["texts"] / naive["bucketed_s"]
    print(
        f"embedder alone on {naive['texts']} of the same chunks: naive encode(batch 32) {naive_cps:.1f} chunks/s; "
        f"cogo's length buckets {bucketed_cps:.1f} chunks/s; cogo end to end / naive = {cps / naive_cps:.2f}x"
    )
    rerun = rerun_in_fresh_process(url, root)
    print(
        f"re-run, nothing changed, fresh process: {rerun['process_s']:.2f} s wall (limit {RERUN_LIMIT_S} s), "
        f"{rerun['calls']} embedding calls (limit 0), {rerun['hashed']} bytes hashed, "
        f"{rerun['extracted']} files extracted, {rerun['rows_written']} rows written"
    )


def print_search(url: str, args: argparse.Namespace) -> None:
    s = search_figures(url, args.queries, args.recall_queries, args.orgs)
    print(
        f"vector search, {args.vectors} vectors, org filter (1 of {args.orgs}), k=10: p50 {s['p50_ms']:.1f} ms, "
        f"p99 {s['p99_ms']:.1f} ms (limit {P99_LIMIT_MS}); recall@10 vs exact {s['recall']:.3f} "
        f"(limit {RECALL_LIMIT}); plan uses HNSW: {s['uses_hnsw']}"
    )
    print(
        f"hybrid search_chunks (query embedding + vector + full text + RRF): p50 {s['hybrid_p50_ms']:.1f} ms, "
        f"p99 {s['hybrid_p99_ms']:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--chunks-per-file", type=int, default=10)
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--naive-sample", type=int, default=2000, help="chunks for the naive-embedder figure")
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--recall-queries", type=int, default=100)
    parser.add_argument("--peer-files", type=int, default=300)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-vectors", action="store_true")
    parser.add_argument("--peer-only", action="store_true", help="generate the corpus and run only the peer phase")
    parser.add_argument("--search-only", action="store_true", help="search figures on the vectors already loaded")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cogo-bench-knowledge"))
    args = parser.parse_args()

    server_url = database_url(Settings.from_env())
    if args.search_only:
        print_search(with_database(server_url, DB_NAME), args)
        return
    url = fresh_database(server_url)
    root = args.workdir / "workspaces"
    print(f"database {DB_NAME}; workspace {root}; cores {os.cpu_count()}")

    with psycopg.connect(url) as conn:
        t0 = time.monotonic()
        size = generate_corpus(conn, root, args.files, args.chunks_per_file, args.orgs)
    print(f"corpus: {args.files} files, {size / 1e6:.1f} MB written in {time.monotonic() - t0:.1f} s")

    if args.peer_only:
        args.skip_vectors = True
    else:
        measure_cogo(url, root, args)
    if not args.skip_vectors:
        load = load_vectors(url, args.vectors, args.orgs)
        print(
            f"bulk write: {load['rows']} vectors (384 dims) by binary COPY in {load['copy_s']:.1f} s = "
            f"{load['rows_per_s']:.0f} rows/s; HNSW build {load['hnsw_build_s']:.1f} s"
        )
        print_search(url, args)
    if not args.skip_peer:
        p = peer_llamaindex(server_url, root, args.peer_files)
        llama_cps = p["llama_chunks"] / p["llama_first_s"]
        cogo_cps = p["cogo_chunks"] / p["cogo_first_s"]
        print(f"peer, same {p['files']} files, same model, this run:")
        print(f"  {'':12} {'time':>9} {'chunks':>7} {'chunks/s':>9} {'re-run':>8} {'rows after 2 runs':>18}")
        print(
            f"  {'LlamaIndex':12} {p['llama_first_s']:8.1f}s {p['llama_chunks']:7d} {llama_cps:9.1f} "
            f"{p['llama_second_s']:7.1f}s {p['llama_rows']:18d}"
        )
        print(
            f"  {'cogo':12} {p['cogo_first_s']:8.1f}s {p['cogo_chunks']:7d} {cogo_cps:9.1f} "
            f"{p['cogo_second_s']:7.1f}s {p['cogo_rows']:18d}"
        )
        print(f"  cogo / LlamaIndex chunks per second: {cogo_cps / llama_cps:.2f}x (target {PEER_RATIO_TARGET}x)")


if __name__ == "__main__":
    main()
