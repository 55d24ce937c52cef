"""Assets, one module per lifecycle stage. Each is a thin shell over plain functions."""

from __future__ import annotations

import dagster as dg


def all_assets() -> list[dg.AssetsDefinition]:
    from cogo.assets import platform

    return [*platform.assets]


def all_checks() -> list[dg.AssetChecksDefinition]:
    from cogo.assets import platform

    return [*platform.checks]
