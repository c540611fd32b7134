"""privaudit: audit how personal data is actually processed, event by event.

Installed, the repository's top-level folders are one ``privaudit`` namespace. Each layer imports
only the layers below it (``make lint`` checks it with import-linter; docs/architecture.md):

    privaudit.cli          the command line: the only place that wires stages together
    privaudit.producers    producers/   the emitter library services embed; the simulated services
    privaudit.consumers    consumers/   the audit consumer and its hosting, the bulk stage, the alerts
    privaudit.dashboards   dashboards/  the web dashboard, Grafana panels, the monthly review
    privaudit.checker      the pure core: the rule catalogue and the checker
    privaudit.policy       policy files, validated and compiled (the shipped ones: policies/)
    privaudit.schemas      schemas/     the event contract: Avro schemas, models, codec
    privaudit.store, .bus  the ClickHouse and Kafka adapters
    privaudit.backoff, .signals, .settings, .errors   what every layer uses
"""

__version__ = "0.1.0"
