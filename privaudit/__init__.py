"""privaudit: audit how personal data is actually processed, event by event.

The folders read like the architecture:

    schemas/     the event contract: Avro schemas, pydantic models, the binary codec
    policies/    privacy policies as code (YAML), compiled by privaudit.policy
    privaudit/   the pure core (policy model, rule catalogue, checker) and the CLI
    producers/   the emitter library services embed          (pipeline issue)
    consumers/   the audit consumer: Kafka -> checker -> ClickHouse (pipeline issue)
    dashboards/  dashboards and reports for the compliance team (alerts issue)
"""

__version__ = "0.1.0"
