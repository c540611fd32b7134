"""What the compliance team reads: the built-in dashboard (:mod:`.server` over :mod:`.queries`
and :mod:`.panels`), the same panels for Grafana (:mod:`.grafana`), the monthly review of access
records (:mod:`.report`), and the client of a running dashboard (:mod:`.client`)."""
