"""The fixtures of the tests that run the sensor as ``nobody`` (:mod:`tests.deploy.nobody`)."""

from tests.deploy.nobody import code, world

__all__ = ["code", "world"]
