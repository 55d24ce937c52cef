"""The code knowledge graph from git history, Dagster-free: parsing (tree-sitter), call resolution,
history processing and the graph/Postgres writes. `cogo.assets.code` is the thin Dagster shell."""
