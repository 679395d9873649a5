"""A budget of calls shared by every worker process: Blockpass's API, and each subscriber's cap.

A token bucket in Redis (BLOCKPASS_RATE_LIMIT calls per second, bursts of up
to one second's worth), plus a shared hold-off: when Blockpass answers 429,
every worker waits what it said before calling again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis import Redis

# Returns 0 when a token was taken, else the milliseconds to wait before trying again.
# Time comes from the Redis server so that every worker shares one clock.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local hold = tonumber(redis.call('GET', KEYS[2]) or '0')
if hold > now_ms then
  return hold - now_ms
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now_ms
tokens = math.min(capacity, tokens + (now_ms - at) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now_ms))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return wait
"""

# Extends the hold-off to now + ms, never shortens it.
_HOLD = """
local now = redis.call('TIME')
local until_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > current then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
end
return 1
"""


class BudgetExhausted(Exception):
    """No call could be made within the longest wait a caller accepts; try later."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"Blockpass call budget: next call in {wait:.1f}s")
        self.wait = wait


class CallBudget:
    def __init__(
        self,
        redis: Redis,
        rate: float,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 30.0,
        name: str = "blockpass",
    ) -> None:
        self.redis = redis
        self.keys = [f"kyc:{name}:bucket", f"kyc:{name}:hold-until"]
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.sleep = sleep
        self.max_wait = max_wait
        self._take = redis.register_script(_TAKE)
        self._hold = redis.register_script(_HOLD)

    def acquire(self) -> float:
        """Wait for a token; returns the seconds waited. Raises BudgetExhausted past max_wait."""
        if self.rate <= 0:
            return 0.0
        waited = 0.0
        while True:
            wait_ms = int(self._take(keys=self.keys, args=[self.rate, self.capacity]))
            if wait_ms <= 0:
                return waited
            wait = wait_ms / 1000
            if waited + wait > self.max_wait:
                raise BudgetExhausted(wait)
            self.sleep(wait)
            waited += wait

    def hold_off(self, seconds: float) -> None:
        """Blockpass said 429: every worker waits this long before its next call."""
        self._hold(keys=self.keys[1:], args=[int(seconds * 1000)])
