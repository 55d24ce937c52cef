"""Retention: the 30-day sweep of conversations, files, agent states and applied inbox events (Dagster-free)."""

from cogo.retention.policy import Policy, load_policy
from cogo.retention.sweep import Checkpoint, SweepOptions, SweepReport, sweep

__all__ = ["Checkpoint", "Policy", "SweepOptions", "SweepReport", "load_policy", "sweep"]
