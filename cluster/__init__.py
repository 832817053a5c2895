"""Where things run: Ray (embedded or remote), Ray jobs, and a private Redis.

This package is the only home of `ray` in swarmlab (imported lazily, inside functions).
"""

from swarmlab.core import ClusterError

from ._archive import (
    MAX_RUN_BYTES,
    Unpacked,
    decode_archive,
    encode_archive,
    pack_run_dir,
    plain_out_dir,
    unpack_run_archive,
)
from ._jobs import JobServer
from ._ray import RayCluster
from ._reaper import Reaper, pid_alive
from ._redis import PORT_ATTEMPTS, PortTaken, RedisServer, free_port, port_taken
from ._serve import build_llm_app
from ._warm import (
    WarmState,
    WarmUp,
    age_counted_for_a_client,
    count_age_from,
    process_age_s,
    warm_dir,
    warm_down,
    warm_instance,
    warm_up,
)

__all__ = [
    "MAX_RUN_BYTES",
    "PORT_ATTEMPTS",
    "ClusterError",
    "JobServer",
    "PortTaken",
    "RayCluster",
    "Reaper",
    "RedisServer",
    "Unpacked",
    "WarmState",
    "WarmUp",
    "age_counted_for_a_client",
    "build_llm_app",
    "count_age_from",
    "decode_archive",
    "encode_archive",
    "free_port",
    "pack_run_dir",
    "pid_alive",
    "plain_out_dir",
    "port_taken",
    "process_age_s",
    "unpack_run_archive",
    "warm_dir",
    "warm_down",
    "warm_instance",
    "warm_up",
]
