"""argon2id password hashing off the event loop, in a bounded pool of worker processes (`pool.py`)
each running one argon2 hasher (`worker.py`). Registration hashes and verifies passwords with it;
confirmation-web hashes the new password of a reset."""

from userreg.shared.hashing.pool import HashingBusy, PasswordHashing, worker_count
from userreg.shared.hashing.worker import Argon2Parameters, HashingUnavailable

__all__ = ["Argon2Parameters", "HashingBusy", "HashingUnavailable", "PasswordHashing", "worker_count"]
