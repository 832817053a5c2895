"""Errors of the places things run."""


class ClusterError(Exception):
    """A server or cluster could not be started or reached."""
