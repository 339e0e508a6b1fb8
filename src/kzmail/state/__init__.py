"""The state folder: the journal of deliveries, suppressions, the secret, the run lock.

The only place (with the list de-duplicator) that uses sqlite3; every database failure
leaves it as a `StateError`.
"""
