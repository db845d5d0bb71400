"""Tests of alert rendering: ECS and OCSF conformance, event time, the one-connection fields."""
