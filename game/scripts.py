"""The game's Lua scripts: a catch attempt, a reward, a strike — each on one slot."""

from __future__ import annotations

# KEYS: state, attempts, collection, recent, last catch, boards, geo state (the shopper's tag)
# ARGV: now, spawn id, shopper, day, cooldown s, daily cap, catch rate, flee rate,
#       collection field, attempts ttl, lat, lon, rate window s, city, spawn reference,
#       last-catch ttl (the fix retention), board ('<campaign>|<city>|<day>')
# The roll is sha1(spawn|shopper|attempt): the same attempt always rolls the same, a retry is a
# new attempt, and an auditor recomputes any roll from the three values. Nothing stored names
# the spawn (its id carries its map cell or store): attempts are kept under its opaque
# reference, and the last catch's place expires with the raw fixes.
CATCH = """
local nowS = ARGV[1]
local now = tonumber(nowS)
local spawn, shopper, day, ref = ARGV[2], ARGV[3], ARGV[4], ARGV[15]
local st = redis.call('HMGET', KEYS[1], 'last_attempt', 'day', 'day_catches', 'suspended')
if st[4] == '1' then return {'no', 'SUSPENDED'} end
-- Consent withdrawn since it was read: write no place after geo's erasure.
if redis.call('HGET', KEYS[7], 'consent') ~= '1' then return {'no', 'CONSENT'} end
local prev = redis.call('HGET', KEYS[2], ref)
if prev == 'caught' then return {'no', 'ALREADY_CAUGHT'} end
if prev == 'fled' then return {'no', 'FLED'} end
local cooldown = tonumber(ARGV[5])
if st[1] and now - tonumber(st[1]) < cooldown then
  return {'no', 'COOLDOWN', tostring(tonumber(st[1]) + cooldown)}
end
local today = 0
if st[2] == day then today = tonumber(st[3] or 0) end
if today >= tonumber(ARGV[6]) then return {'no', 'DAILY_CAP_REACHED'} end
local attempt = tonumber(prev or 0) + 1
local h = redis.sha1hex(spawn .. '|' .. shopper .. '|' .. attempt)
local roll = tonumber(string.sub(h, 1, 8), 16) / 4294967296
local flee = tonumber(string.sub(h, 9, 16), 16) / 4294967296
redis.call('HSET', KEYS[1], 'last_attempt', nowS)
redis.call('ZADD', KEYS[4], now, ref .. '|' .. attempt)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[13]))
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[13]))
local outcome
if roll < tonumber(ARGV[7]) then
  outcome = 'caught'
  redis.call('HSET', KEYS[2], ref, 'caught')
  redis.call('HSET', KEYS[1], 'day', day, 'day_catches', today + 1)
  redis.call('HSET', KEYS[5], 'at', nowS, 'lat', ARGV[11], 'lon', ARGV[12], 'city', ARGV[14])
  redis.call('EXPIRE', KEYS[5], tonumber(ARGV[16]))
  redis.call('HINCRBY', KEYS[3], ARGV[9], 1)
  redis.call('SADD', KEYS[6], ARGV[17])
elseif flee < tonumber(ARGV[8]) then
  outcome = 'fled'
  redis.call('HSET', KEYS[2], ref, 'fled')
else
  outcome = 'missed'
  redis.call('HSET', KEYS[2], ref, attempt)
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[10]))
return {outcome, attempt}
"""

# KEYS: rewarded, campaign board (all), campaign board (day), city board (all), city board (day)
# ARGV: catch id, shopper, points, day-board ttl, rewarded ttl
REWARD = """
local first = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
if first == 1 then
  for i = 2, 5 do redis.call('ZINCRBY', KEYS[i], tonumber(ARGV[3]), ARGV[2]) end
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
  redis.call('EXPIRE', KEYS[5], tonumber(ARGV[4]))
end
return {first, redis.call('ZSCORE', KEYS[2], ARGV[2]) or '0'}
"""

# KEYS: state, strikes                               (the shopper's tag)
# ARGV: now, record JSON (counted), cooldown s, shadow s, record JSON (not counted), reason,
#       history cap
# Three strikes: a warning, then a shadow restriction, then suspension. One incident (a burst
# of spoofed fixes, say) counts once: a strike of the same kind less than the cooldown after
# the last counted one is recorded with its evidence but not counted.
STRIKE = """
local nowS = ARGV[1]
local now = tonumber(nowS)
local since = 'last_strike_at:' .. ARGV[6]
local st = redis.call('HMGET', KEYS[1], 'strikes', since, 'suspended')
local count = tonumber(st[1] or 0)
local counted = 1
if st[3] == '1' or (st[2] and now - tonumber(st[2]) < tonumber(ARGV[3])) then counted = 0 end
if counted == 1 then
  count = count + 1
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('HSET', KEYS[1], 'strikes', count, since, nowS)
  if count == 2 then
    redis.call('HSET', KEYS[1], 'restricted_until', now + tonumber(ARGV[4]))
  elseif count >= 3 then
    redis.call('HSET', KEYS[1], 'suspended', '1')
  end
else
  redis.call('RPUSH', KEYS[2], ARGV[5])
end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[7]), -1)
return {count, counted}
"""

# Reads of the hot paths as one command each (the keys share the shopper's slot): cheaper for
# the client than a pipeline of several.
# KEYS: geo position, game state, attempts           ARGV: -
# The attempts hash holds only the spawns tried lately (it expires with them): their references
# and 'caught' / 'fled' / a count, so the list can say which creatures are already caught.
VIEW_STATE = """
local s = redis.call('HMGET', KEYS[2], 'suspended', 'restricted_until')
return {redis.call('HGET', KEYS[1], 'anchor'), s[1], s[2], redis.call('HGETALL', KEYS[3])}
"""

# KEYS: geo position, geo state, game state, recent, last catch   ARGV: since
CATCH_STATE = """
local g = redis.call('HMGET', KEYS[2], 'consent', 'trust')
local s = redis.call('HMGET', KEYS[3], 'suspended', 'restricted_until')
local c = redis.call('HMGET', KEYS[5], 'at', 'lat', 'lon', 'city')
return {redis.call('HGET', KEYS[1], 'anchor'), g[1], g[2], s[1], s[2], c[1], c[2], c[3], c[4],
        redis.call('ZCOUNT', KEYS[4], ARGV[1], '+inf')}
"""

SOURCES = {
    "catch": CATCH,
    "reward": REWARD,
    "strike": STRIKE,
    "view_state": VIEW_STATE,
    "catch_state": CATCH_STATE,
}
