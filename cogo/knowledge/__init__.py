"""Workspace files as searchable knowledge: extraction, chunking, embedding, indexes and hybrid search."""
