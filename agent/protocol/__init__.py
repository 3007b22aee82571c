"""The contract both ends share: DSSE envelopes, the event body and schema, topics, acks, enrolment.

Imports only the standard library, PyNaCl and agent.errors (tests/unit/test_import_rules.py).
"""
