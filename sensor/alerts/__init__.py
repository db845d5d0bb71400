"""Alerts: the alert record (:mod:`.alert`), the catalogue of actions and rules (:mod:`.catalogue`) and their
rendering as ECS or OCSF JSON (:mod:`.render`). Pure: no I/O."""
