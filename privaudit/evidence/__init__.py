"""Evidence that the record is whole: per-partition hash chains, signed heads, and their verification.

- :mod:`.chain`: what each offset of a partition contributes to its chain, and the chain's steps;
- :mod:`.keys`: the Ed25519 key that signs each new head, and the statement it signs;
- :mod:`.verify`: ``privaudit verify``, which recomputes the chains from the stored rows.
"""

from .chain import GENESIS, Chain, RecordKind, dead_letter_record, event_record, verdicts_hash
from .keys import Signer, Verifier, load_signer, statement

__all__ = ["GENESIS", "Chain", "RecordKind", "Signer", "Verifier", "dead_letter_record", "event_record",
           "load_signer", "statement", "verdicts_hash"]
