"""The Lua scripts that hold every promotions invariant; each touches keys of one campaign only.

Caps, budgets, idempotency, single-use redemption, voids, expiry and status transitions are
decided inside one script each, so concurrent issuers in any number of processes can neither
over-issue nor double-redeem: Redis runs a script to completion before the next command.
"""

from __future__ import annotations

import redis

from core.scripts import LuaScripts

# A campaign's status moves by itself at its window's edges: scheduled -> live at the start,
# and scheduled/live/paused -> ended at the end. Every script that depends on the status asks
# this function first, so no timer has to run for a campaign to go live on time.
_EFFECTIVE = """
local function effective(meta, ledger, now, nowS)
  local m = redis.call('HMGET', meta, 'status', 'starts', 'ends')
  local status = m[1]
  if not status then return nil end
  local starts, ends = tonumber(m[2]), tonumber(m[3])
  local new = status
  if (status == 'scheduled' or status == 'live' or status == 'paused') and now >= ends then
    new = 'ended'
  elseif status == 'scheduled' and now >= starts then
    new = 'live'
  end
  if new ~= status then
    redis.call('HSET', meta, 'status', new, 'status_at', nowS)
    redis.call('XADD', ledger, '*', 'type', 'status', 'from', status, 'to', new,
               'actor', 'clock', 'at', nowS)
  end
  return new, starts, ends
end
"""

_EXPIRE_ONE = """
local function expire_one(statekey, expkey, ledger, stats, seq, s, nowS, cid, hour)
  s.status = 'expired'
  s.expired_at = tonumber(nowS)
  local enc = cjson.encode(s)
  redis.call('HSET', statekey, seq, enc)
  redis.call('ZREM', expkey, seq)
  redis.call('XADD', ledger, '*', 'type', 'expire', 'coupon', cid .. '-' .. seq,
             'offer', s.offer_id, 'shopper', s.shopper_id, 'store', s.store_id,
             'channel', s.channel, 'actor', 'clock', 'at', nowS)
  redis.call('HINCRBY', stats, 'expired|' .. s.offer_id .. '|' .. s.store_id .. '|' .. hour
             .. '|' .. s.channel, 1)
  redis.call('HINCRBY', stats, 'v', 1)
  return enc
end
"""

# KEYS: meta, offer, per_shopper, per_shopper_day, per_store_day, idempotency, coupons, state,
#       wallet, expiring, ledger, stats
# ARGV: now, offer id, shopper, store ('' = none), channel, idempotency key, campaign id,
#       coupon JSON after its id, valid from, expires at, hour, day, day-key ttl, actor, source
ISSUE = (
    _EFFECTIVE
    + """
local nowS = ARGV[1]
local now = tonumber(nowS)
local oid, shopper, store, channel, idem = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local hour = ARGV[11]
local seen = redis.call('HGET', KEYS[6], idem)
if seen then
  return {'dup', redis.call('HGET', KEYS[7], seen), redis.call('HGET', KEYS[8], seen)}
end
local function refuse(reason)
  redis.call('HINCRBY', KEYS[12], 'refused:' .. reason .. '|' .. oid .. '|' .. store .. '|'
             .. hour .. '|' .. channel, 1)
  redis.call('HINCRBY', KEYS[12], 'v', 1)
  return {'no', reason}
end
local status = effective(KEYS[1], KEYS[11], now, nowS)
if not status then return {'no', 'CAMPAIGN_NOT_FOUND'} end
if status == 'scheduled' then return refuse('OUTSIDE_WINDOW') end
if status ~= 'live' then return refuse('CAMPAIGN_NOT_LIVE') end
local o = redis.call('HMGET', KEYS[2], 'active', 'channels', 'valid_until', 'value_fen',
  'cap_total', 'cap_value', 'cap_shopper', 'cap_shopper_day', 'cap_store_day', 'issued', 'value')
if not o[1] then return {'no', 'OFFER_NOT_FOUND'} end
if o[1] ~= '1' then return refuse('OFFER_INACTIVE') end
if not string.find(o[2], ',' .. channel .. ',', 1, true) then
  return refuse('CHANNEL_NOT_ALLOWED')
end
if o[3] ~= '' and now >= tonumber(o[3]) then return refuse('OUTSIDE_WINDOW') end
local value = tonumber(o[4])
local function over(cap, used, add)
  return cap ~= nil and cap ~= false and cap ~= '' and (tonumber(used or 0) + add) > tonumber(cap)
end
if over(o[5], o[10], 1) then return refuse('CAP_TOTAL_REACHED') end
if over(o[6], o[11], value) then return refuse('CAP_BUDGET_REACHED') end
local b = redis.call('HMGET', KEYS[1], 'budget_count', 'budget_value', 'issued', 'value')
if over(b[1], b[3], 1) then return refuse('CAP_TOTAL_REACHED') end
if over(b[2], b[4], value) then return refuse('CAP_BUDGET_REACHED') end
local sfield = oid .. '|' .. shopper
if o[7] ~= '' and over(o[7], redis.call('HGET', KEYS[3], sfield), 1) then
  return refuse('CAP_PER_SHOPPER_REACHED')
end
if o[8] ~= '' and over(o[8], redis.call('HGET', KEYS[4], sfield), 1) then
  return refuse('CAP_PER_SHOPPER_DAY_REACHED')
end
local tfield = oid .. '|' .. store
if store ~= '' and o[9] ~= '' and over(o[9], redis.call('HGET', KEYS[5], tfield), 1) then
  return refuse('CAP_PER_STORE_REACHED')
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local cid = ARGV[7] .. '-' .. seq
local coupon = '{"id":"' .. cid .. '",' .. ARGV[8]
local state = cjson.encode({status = 'issued', offer_id = oid, shopper_id = shopper,
  store_id = store, channel = channel, valid_from = tonumber(ARGV[9]),
  expires_at = tonumber(ARGV[10]), value_fen = value, day = ARGV[12], hour = hour,
  issued_at = now})
local ttl = tonumber(ARGV[13])
redis.call('HINCRBY', KEYS[2], 'issued', 1)
redis.call('HINCRBY', KEYS[2], 'value', value)
redis.call('HINCRBY', KEYS[1], 'issued', 1)
redis.call('HINCRBY', KEYS[1], 'value', value)
redis.call('HINCRBY', KEYS[3], sfield, 1)
redis.call('HINCRBY', KEYS[4], sfield, 1)
redis.call('EXPIRE', KEYS[4], ttl)
if store ~= '' then
  redis.call('HINCRBY', KEYS[5], tfield, 1)
  redis.call('EXPIRE', KEYS[5], ttl)
end
redis.call('HSET', KEYS[6], idem, seq)
redis.call('HSET', KEYS[7], seq, coupon)
redis.call('HSET', KEYS[8], seq, state)
redis.call('ZADD', KEYS[9], now, seq)
redis.call('ZADD', KEYS[10], tonumber(ARGV[10]), seq)
local tail = '|' .. oid .. '|' .. store .. '|' .. hour .. '|' .. channel
redis.call('HINCRBY', KEYS[12], 'issued' .. tail, 1)
redis.call('HINCRBY', KEYS[12], 'value' .. tail, value)
redis.call('HINCRBY', KEYS[12], 'v', 1)
redis.call('XADD', KEYS[11], '*', 'type', 'issue', 'coupon', cid, 'offer', oid,
           'shopper', shopper, 'store', store, 'channel', channel, 'actor', ARGV[14],
           'at', nowS, 'value_fen', value, 'source', ARGV[15], 'idempotency_key', idem)
return {'ok', coupon, state}
"""
)

# KEYS: meta, offer, state, expiring, ledger, stats, the store's redemptions
# ARGV: now, seq, order ref, store, staff id, basket fen, discount fen, hour, campaign id, actor
REDEEM = (
    _EXPIRE_ONE
    + """
local nowS = ARGV[1]
local now = tonumber(nowS)
local seq = ARGV[2]
local raw = redis.call('HGET', KEYS[3], seq)
if not raw then return {'no', 'NOT_FOUND'} end
local s = cjson.decode(raw)
if s.status == 'redeemed' then
  if s.redemption.order_ref == ARGV[3] and s.redemption.store_id == ARGV[4] then
    return {'dup', raw}
  end
  return {'no', 'ALREADY_REDEEMED', raw}
end
if s.status == 'voided' then return {'no', 'COUPON_VOIDED', raw} end
if s.status == 'expired' then return {'no', 'COUPON_EXPIRED', raw} end
if now >= s.expires_at then
  return {'no', 'COUPON_EXPIRED',
          expire_one(KEYS[3], KEYS[4], KEYS[5], KEYS[6], seq, s, nowS, ARGV[9], ARGV[8])}
end
if now < s.valid_from then return {'no', 'NOT_YET_VALID', raw} end
local discount = tonumber(ARGV[7])
s.status = 'redeemed'
s.redemption = {order_ref = ARGV[3], store_id = ARGV[4], staff_id = ARGV[5], at = now,
                basket_fen = tonumber(ARGV[6]), discount_fen = discount, hour = ARGV[8]}
local enc = cjson.encode(s)
redis.call('HSET', KEYS[3], seq, enc)
redis.call('ZREM', KEYS[4], seq)
redis.call('HINCRBY', KEYS[2], 'redeemed', 1)
redis.call('HINCRBY', KEYS[2], 'discount', discount)
redis.call('HINCRBY', KEYS[1], 'redeemed', 1)
redis.call('HINCRBY', KEYS[1], 'discount', discount)
local tail = '|' .. s.offer_id .. '|' .. ARGV[4] .. '|' .. ARGV[8] .. '|' .. s.channel
redis.call('HINCRBY', KEYS[6], 'redeemed' .. tail, 1)
redis.call('HINCRBY', KEYS[6], 'discount' .. tail, discount)
redis.call('HINCRBY', KEYS[6], 'v', 1)
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[7], now, cjson.encode({seq = seq, order_ref = ARGV[3],
             basket_fen = tonumber(ARGV[6]), discount_fen = discount, staff_id = ARGV[5]}))
end
redis.call('XADD', KEYS[5], '*', 'type', 'redeem', 'coupon', ARGV[9] .. '-' .. seq,
           'offer', s.offer_id, 'shopper', s.shopper_id, 'store', ARGV[4],
           'channel', s.channel, 'actor', ARGV[10], 'at', nowS, 'order_ref', ARGV[3],
           'basket_fen', ARGV[6], 'discount_fen', discount)
return {'ok', enc}
"""
)

# KEYS: meta, offer, state, expiring, ledger, stats
# ARGV: now, seq, order ref ('' = any), void window s, actor, campaign id, hour
UNREDEEM = (
    _EXPIRE_ONE
    + """
local nowS = ARGV[1]
local now = tonumber(nowS)
local seq = ARGV[2]
local raw = redis.call('HGET', KEYS[3], seq)
if not raw then return {'no', 'NOT_FOUND'} end
local s = cjson.decode(raw)
if s.status ~= 'redeemed' then return {'no', 'NOT_REDEEMED', raw} end
local r = s.redemption
if ARGV[3] ~= '' and r.order_ref ~= ARGV[3] then return {'no', 'ORDER_MISMATCH', raw} end
if now - r.at > tonumber(ARGV[4]) then return {'no', 'VOID_WINDOW_PASSED', raw} end
s.redemption = nil
s.voided_redemptions = (s.voided_redemptions or 0) + 1
redis.call('HINCRBY', KEYS[2], 'redeemed', -1)
redis.call('HINCRBY', KEYS[2], 'discount', -r.discount_fen)
redis.call('HINCRBY', KEYS[1], 'redeemed', -1)
redis.call('HINCRBY', KEYS[1], 'discount', -r.discount_fen)
local tail = '|' .. s.offer_id .. '|' .. r.store_id .. '|' .. r.hour .. '|' .. s.channel
redis.call('HINCRBY', KEYS[6], 'redeemed' .. tail, -1)
redis.call('HINCRBY', KEYS[6], 'discount' .. tail, -r.discount_fen)
redis.call('HINCRBY', KEYS[6], 'v', 1)
redis.call('XADD', KEYS[5], '*', 'type', 'void_redemption', 'coupon', ARGV[6] .. '-' .. seq,
           'offer', s.offer_id, 'shopper', s.shopper_id, 'store', r.store_id,
           'channel', s.channel, 'actor', ARGV[5], 'at', nowS, 'order_ref', r.order_ref,
           'discount_fen', r.discount_fen)
if now < s.expires_at then
  s.status = 'issued'
  redis.call('ZADD', KEYS[4], s.expires_at, seq)
  local enc = cjson.encode(s)
  redis.call('HSET', KEYS[3], seq, enc)
  return {'ok', enc}
end
return {'ok', expire_one(KEYS[3], KEYS[4], KEYS[5], KEYS[6], seq, s, nowS, ARGV[6], ARGV[7])}
"""
)

# KEYS: meta, offer, per_shopper, per_shopper_day (of issue), per_store_day (of issue),
#       state, expiring, ledger, stats
# ARGV: now, seq, actor, campaign id, reason
VOID = """
local nowS = ARGV[1]
local seq = ARGV[2]
local raw = redis.call('HGET', KEYS[6], seq)
if not raw then return {'no', 'NOT_FOUND'} end
local s = cjson.decode(raw)
if s.status ~= 'issued' then return {'no', 'NOT_VOIDABLE', raw} end
s.status = 'voided'
s.voided_at = tonumber(nowS)
s.void_reason = ARGV[5]
local enc = cjson.encode(s)
redis.call('HSET', KEYS[6], seq, enc)
redis.call('ZREM', KEYS[7], seq)
local v = s.value_fen
redis.call('HINCRBY', KEYS[2], 'issued', -1)
redis.call('HINCRBY', KEYS[2], 'value', -v)
redis.call('HINCRBY', KEYS[1], 'issued', -1)
redis.call('HINCRBY', KEYS[1], 'value', -v)
local sfield = s.offer_id .. '|' .. s.shopper_id
redis.call('HINCRBY', KEYS[3], sfield, -1)
if tonumber(redis.call('HGET', KEYS[4], sfield) or 0) > 0 then
  redis.call('HINCRBY', KEYS[4], sfield, -1)
end
local tfield = s.offer_id .. '|' .. s.store_id
if s.store_id ~= '' and tonumber(redis.call('HGET', KEYS[5], tfield) or 0) > 0 then
  redis.call('HINCRBY', KEYS[5], tfield, -1)
end
redis.call('HINCRBY', KEYS[9], 'voided|' .. s.offer_id .. '|' .. s.store_id .. '|' .. s.hour
           .. '|' .. s.channel, 1)
redis.call('HINCRBY', KEYS[9], 'v', 1)
redis.call('XADD', KEYS[8], '*', 'type', 'void', 'coupon', ARGV[4] .. '-' .. seq,
           'offer', s.offer_id, 'shopper', s.shopper_id, 'store', s.store_id,
           'channel', s.channel, 'actor', ARGV[3], 'at', nowS, 'value_fen', v,
           'reason', ARGV[5])
return {'ok', enc}
"""

# KEYS: state, expiring, ledger, stats
# ARGV: now, limit, campaign id, hour, [seq ...] (given: only those; else the due ones)
EXPIRE = (
    _EXPIRE_ONE
    + """
local nowS = ARGV[1]
local now = tonumber(nowS)
local seqs = {}
if #ARGV > 4 then
  for i = 5, #ARGV do seqs[#seqs + 1] = ARGV[i] end
else
  seqs = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
end
local count = 0
for _, seq in ipairs(seqs) do
  local raw = redis.call('HGET', KEYS[1], seq)
  if raw then
    local s = cjson.decode(raw)
    if s.status == 'issued' then
      if now >= s.expires_at then
        expire_one(KEYS[1], KEYS[2], KEYS[3], KEYS[4], seq, s, nowS, ARGV[3], ARGV[4])
        count = count + 1
      end
    else
      redis.call('ZREM', KEYS[2], seq)
    end
  else
    redis.call('ZREM', KEYS[2], seq)
  end
end
return count
"""
)

# KEYS: meta, ledger
# ARGV: now, target status ('' = only apply the clock's transitions), actor
TRANSITION = (
    _EFFECTIVE
    + """
local nowS = ARGV[1]
local now = tonumber(nowS)
local to = ARGV[2]
local status, starts, ends = effective(KEYS[1], KEYS[2], now, nowS)
if not status then return {'no', 'NOT_FOUND'} end
if to == '' or to == status then return {'ok', status} end
local allowed = {draft = {scheduled = 1, ended = 1}, scheduled = {draft = 1, live = 1, ended = 1},
                 live = {paused = 1, ended = 1}, paused = {live = 1, ended = 1}, ended = {}}
if not allowed[status][to] then return {'no', 'INVALID_TRANSITION', status} end
if to == 'live' and status == 'scheduled' and now < starts then
  return {'no', 'OUTSIDE_WINDOW', status}
end
if (to == 'live' or to == 'scheduled') and now >= ends then
  return {'no', 'OUTSIDE_WINDOW', status}
end
redis.call('HSET', KEYS[1], 'status', to, 'status_at', nowS)
redis.call('XADD', KEYS[2], '*', 'type', 'status', 'from', status, 'to', to,
           'actor', ARGV[3], 'at', nowS)
return {'ok', (effective(KEYS[1], KEYS[2], now, nowS))}
"""
)

# Every script that counts in a campaign's statistics hash (stats) also bumps its field 'v', the
# version the live funnel compares to skip an unchanged campaign (reports.STATS_VERSION).

# KEYS: seen (of the day), stats, visitors
# ARGV: event id, stats field, shopper, ttl
RECORD_VISIT = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('HINCRBY', KEYS[2], 'v', 1)
redis.call('PFADD', KEYS[3], ARGV[3])
return 1
"""

SOURCES = {
    "issue": ISSUE,
    "redeem": REDEEM,
    "unredeem": UNREDEEM,
    "void": VOID,
    "expire": EXPIRE,
    "transition": TRANSITION,
    "record_visit": RECORD_VISIT,
}


class Scripts(LuaScripts):
    """The promotions scripts on one Redis server."""

    def __init__(self, r: redis.Redis) -> None:
        super().__init__(r, SOURCES)
