"""A pytest plugin that prints which heavy modules a run imported (`-p import_probe`, tests/ on PYTHONPATH).

A warm re-run (every feature and fit cached) should import none of them: each costs seconds of
start-up on a small machine.
"""

import sys

HEAVY = ("torch", "transformers", "peft", "sklearn", "scipy.stats", "openai")


def pytest_unconfigure(config):
    print("HEAVY", sorted(m for m in HEAVY if m in sys.modules))
