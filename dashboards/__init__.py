"""Dashboards, alerts and monthly review reports for the compliance team: arrive with the
alerting issue."""
