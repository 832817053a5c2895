"""Where things run: Ray (embedded or remote) and a private Redis."""

from ._errors import ClusterError
from ._jobs import JobServer
from ._ray import RayCluster
from ._redis import RedisServer, free_port

__all__ = ["ClusterError", "JobServer", "RayCluster", "RedisServer", "free_port"]
