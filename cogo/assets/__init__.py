"""Assets, one module per lifecycle stage; each is a thin shell over plain, Dagster-free functions.

A stage module defines lists named `assets`, `checks`, `jobs`, `schedules` and `sensors` (those it has);
cogo.pipelines.definitions names each of them.
"""
