"""The mailer's pure rules (no I/O), by concern:

policy.py     what a failure means: transient or permanent, retry and deferral delays
leases.py     claims as leases: renewal, whether a send may start, the outcome of a claim
emails.py     which emails an event causes
redaction.py  link tokens out of the texts the mailer keeps and logs
"""
