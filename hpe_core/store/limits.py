"""Length limits that the stored columns set and every input check repeats: one constant
each, so the API schemas, webhooks, imports and the columns cannot drift apart.

No imports: the connector contract (:mod:`hpe_core.deliver.channels`) reads these and
stays light enough for a plugin to import without SQLAlchemy.
"""

#: The longest ``user_id`` (the caller's id for a person): 1 to this many characters.
MAX_USER_ID_LENGTH = 256
