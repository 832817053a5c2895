"""Observability: OpenTelemetry for a run (`telemetry`), the emergence analysis that reads a
run's records (`analysis`), and the report drawn from it (`report`).

The three sub-packages sit in different layers: `telemetry` below the runtime, `analysis` beside
it (never importing it), `report` above `analysis`. Import names from the sub-packages.
"""
