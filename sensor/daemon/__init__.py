"""The ``run`` daemon: one event loop that wires sources to the correlator (:mod:`.pipeline`), commits
checkpoints (:mod:`.checkpoint`), serves metrics (:mod:`.metrics`) and drives the sinks (:mod:`.run`)."""
