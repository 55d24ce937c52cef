"""Clerk sync, Dagster-free: webhook verification and inbox, guarded upserts, the Backend API client and
reconciliation. The Dagster shells are in cogo/assets/clerk.py."""
