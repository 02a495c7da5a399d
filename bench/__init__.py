"""Benchmarks: each module is a script (``python -m bench.<name> [--quick]``) that prints its figures.

See ``bench/README.md`` for what each measures and ``docs/PERFORMANCE.md`` for the latest figures.
"""

from __future__ import annotations
