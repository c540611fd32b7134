"""The emitter library service teams embed, and the simulated services that use it.

    from privaudit.producers import AuditEmitter, Pseudonymizer
"""

from .emitter import AuditEmitter
from .pseudonym import Pseudonymizer
from .spool import Spool, SpoolBusy, SpoolFull

__all__ = ["AuditEmitter", "Pseudonymizer", "Spool", "SpoolBusy", "SpoolFull"]
