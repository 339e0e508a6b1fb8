"""Hand built messages to SMTP relays: the engine, rate gates, connections, the embedded sink.

Takes `Outgoing` messages and a journal (through protocols), returns what each relay said;
the only place that uses aiosmtplib and aiosmtpd.
"""
