"""Put on PYTHONPATH of a ``tollgate audit`` subprocess: only the test rules are registered."""

from tests.audit.data.engine.rules import install

install()
