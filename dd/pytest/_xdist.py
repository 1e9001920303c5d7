"""Several GPUs on one machine under pytest-xdist: one GPU per worker, the claims of a base together.

``pytest -n N --dist loadgroup``: every claim about a base carries ``xdist_group(<base>)``, so
xdist hands all of a base's claims to one worker, which loads that base once (the ``bases`` pool
holds one base at a time). On a machine with CUDA devices each worker pins itself to one of them
(``CUDA_VISIBLE_DEVICES`` from its worker id, ``gw<k>`` -> the k-th visible device, round robin
when there are more workers than devices) before any fixture loads a model. Without xdist, or
without CUDA devices, nothing changes.

xdist's scheduler groups by a suffix of the node id (``test[...]@<base>``) that its worker hook
writes from the marks. That hook runs before this plugin's collection hook, and under pytest 9.2
its write (``item._nodeid``) no longer reaches ``Node.nodeid``, which reads ``item._id``: so the
suffix is written here, where the marks are made. The report keeps the plain node id, so it is the
same as a one-worker run's.
"""

from __future__ import annotations

import os
import sys

import pytest

from dd.lm import visible_gpus
from dd.pytest._session import STATIC_KEY


def distribute(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Pin this worker's GPU, then group the claims by base (the one call in the plugin's collection hook)."""
    pin_worker_gpu(config)
    group_by_base(config, items)


def pin_worker_gpu(config: pytest.Config) -> str | None:
    """On an xdist worker of a machine with CUDA devices, keep one device visible; returns it.

    Raises:
        pytest.UsageError: when CUDA was initialized in this worker already (at import time of a
            test module, say), so that the pin could no longer take effect.
    """
    worker = getattr(config, "workerinput", None)
    devices = visible_gpus()
    if worker is None or not devices:
        return None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise pytest.UsageError("CUDA was initialized during collection, before this xdist worker could pin its GPU: "
                                "keep torch.cuda calls out of module level in test files")
    device = devices[int(str(worker["workerid"]).removeprefix("gw")) % len(devices)]
    os.environ["CUDA_VISIBLE_DEVICES"] = device
    return device


def group_by_base(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every claim item that names a base with ``xdist_group(<base>)``; on a loadgroup worker, suffix its id."""
    loadgroup = bool(getattr(config.option, "loadgroup", False))  # set by xdist on its workers only
    for item in items:
        static = next((value for key, value in item.user_properties if key == STATIC_KEY), None)
        if not isinstance(static, dict) or not static.get("base"):
            continue
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(static["base"]))
            if loadgroup:
                static["nodeid"] = item.nodeid  # the report's id stays the one-worker id
                _set_nodeid(item, f"{item.nodeid}@{static['base']}")


def _set_nodeid(item: pytest.Item, nodeid: str) -> None:
    """Rename a collected item: pytest 9.2 keeps its id as a parsed ``NodeId`` in ``_id``, older ones in ``_nodeid``."""
    current = getattr(item, "_id", None)
    if current is not None and hasattr(type(current), "parse"):
        item._id = type(current).parse(nodeid)
    else:
        item._nodeid = nodeid  # type: ignore[attr-defined]
