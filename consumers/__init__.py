"""The audit consumer (Kafka -> decode -> check -> ClickHouse): arrives with the pipeline issue.

The pure core it will drive is :class:`privaudit.checker.Checker`.
"""
