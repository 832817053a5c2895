"""Where things run: Ray (embedded or remote), Ray jobs, and a private Redis.

This package is the only home of `ray` in swarmlab (imported lazily, inside functions).
"""

from swarmlab.core import ClusterError

from ._jobs import JobServer
from ._ray import RayCluster
from ._reaper import Reaper, pid_alive
from ._redis import RedisServer, free_port
from ._serve import build_llm_app
from ._warm import WarmState, WarmUp, process_age_s, warm_dir, warm_down, warm_instance, warm_up

__all__ = [
    "ClusterError",
    "JobServer",
    "RayCluster",
    "Reaper",
    "RedisServer",
    "WarmState",
    "WarmUp",
    "build_llm_app",
    "free_port",
    "pid_alive",
    "process_age_s",
    "warm_dir",
    "warm_down",
    "warm_instance",
    "warm_up",
]
