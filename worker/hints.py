"""The inbox of sync hints: "look at this candidate", coalesced per candidate, claimed at least once.

Accepting a callback or a webhook costs one Redis round trip (a script that
files the hint and wakes a worker). Workers claim hints in batches; a claimed
hint stays in an in-flight set until its sync is done, so a worker that dies
mid-sync leaves it to be claimed again once its lease runs out.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from redis import Redis

PENDING = "kyc:hints"  # zset: candidate key -> first arrival (FIFO)
DATA = "kyc:hints:data"  # hash: candidate key -> "<priority>|<hint json>"
INFLIGHT = "kyc:hints:inflight"  # zset: candidate key -> lease deadline
INFLIGHT_DATA = "kyc:hints:inflight:data"
WAKE = "kyc:hints:wake"  # list: a token that wakes one idle worker

# A hint that says "deleted" outranks a plain one, so a callback arriving after
# Blockpass's user.deleted webhook does not hide it.
_FILE = """
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current then
  local current_priority = tonumber(string.match(current, '^(%d+)|'))
  if current_priority > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. '|' .. ARGV[2])
local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[4], ARGV[1])
redis.call('LPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], 0, 0)
return added
"""

_CLAIM = """
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
local claimed = {}
for i = 1, #popped, 2 do
  local key = popped[i]
  local value = redis.call('HGET', KEYS[2], key)
  redis.call('HDEL', KEYS[2], key)
  if value then
    redis.call('ZADD', KEYS[3], ARGV[2], key)
    redis.call('HSET', KEYS[4], key, value)
    table.insert(claimed, key)
    table.insert(claimed, value)
  end
end
return claimed
"""

# Leases that ran out go back to the inbox (unless a newer hint is already there).
_RECLAIM = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, key in ipairs(expired) do
  local value = redis.call('HGET', KEYS[2], key)
  redis.call('ZREM', KEYS[1], key)
  redis.call('HDEL', KEYS[2], key)
  if value then
    redis.call('HSETNX', KEYS[4], key, value)
    redis.call('ZADD', KEYS[3], 'NX', ARGV[1], key)
  end
end
if #expired > 0 then
  redis.call('LPUSH', KEYS[5], '1')
  redis.call('LTRIM', KEYS[5], 0, 0)
end
return #expired
"""


@dataclass(frozen=True)
class Hint:
    key: str
    ref_id: str | None
    record_id: str | None
    cause: str = ""
    attempt: int = 0


class Inbox:
    def __init__(self, connection: Redis, lease: float = 60.0) -> None:
        self.connection = connection
        self.lease = lease
        self._file = connection.register_script(_FILE)
        self._claim = connection.register_script(_CLAIM)
        self._reclaim = connection.register_script(_RECLAIM)

    def file(self, hint: Hint, priority: int = 0) -> bool:
        """File a hint; False when one for the same candidate was already waiting (they coalesce)."""
        body = json.dumps(
            {"ref": hint.ref_id, "rec": hint.record_id, "cause": hint.cause, "attempt": hint.attempt}
        )
        keys = [PENDING, DATA, WAKE]
        return bool(self._file(keys=keys, args=[hint.key, body, priority, time.time()]))

    def claim(self, limit: int) -> list[Hint]:
        if limit <= 0:
            return []
        flat = self._claim(
            keys=[PENDING, DATA, INFLIGHT, INFLIGHT_DATA], args=[limit, time.time() + self.lease]
        )
        hints = []
        for i in range(0, len(flat), 2):
            key = _text(flat[i])
            body = json.loads(_text(flat[i + 1]).split("|", 1)[1])
            hints.append(
                Hint(key, body.get("ref"), body.get("rec"), body.get("cause", ""), body.get("attempt", 0))
            )
        return hints

    def done(self, hint: Hint) -> None:
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.zrem(INFLIGHT, hint.key)
            pipe.hdel(INFLIGHT_DATA, hint.key)
            pipe.execute()

    def reclaim_expired(self) -> int:
        keys = [INFLIGHT, INFLIGHT_DATA, PENDING, DATA, WAKE]
        return int(self._reclaim(keys=keys, args=[time.time()]))

    def wait(self, timeout: float, connection: Redis | None = None) -> None:
        """Block until a hint is filed (or timeout); needs a connection that may block."""
        (connection or self.connection).brpop([WAKE], timeout=max(1, int(timeout)))

    def counts(self) -> dict[str, int]:
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.zcard(PENDING)
            pipe.zcard(INFLIGHT)
            pending, inflight = pipe.execute()
        return {"hints_pending": int(pending), "hints_inflight": int(inflight)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
