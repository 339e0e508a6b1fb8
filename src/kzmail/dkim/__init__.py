"""DKIM signatures: the signer that builds the header, and worker processes that sign digests.

The only place that uses `cryptography`.
"""
