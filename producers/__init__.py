"""The emitter library service teams embed (``AuditEmitter``): arrives with the pipeline issue.

Until then services can build events with :mod:`privaudit.schemas` (pydantic models) and frame
them with :class:`privaudit.schemas.Codec`.
"""
