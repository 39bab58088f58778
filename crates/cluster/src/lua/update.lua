-- Contacts of one flush, for many endpoint (or prefix) sets at once.
-- KEYS: the sets. ARGV: now (s), look-back (s), cap, ttl (s), sensor suffix, then for each
-- key: its member count n, then n times (member, second).
-- A set holds up to `cap` members (subscriber pseudonym .. sensor suffix, scored by the last
-- second seen) and the mark 'p' (scored by the second until which the endpoint is popular).
-- A set whose mark still has half the look-back or more to run is settled: its members do
-- not change an answer (popular is popular), so its contacts are not written; they are again
-- once the mark runs below that, well before it runs out, and a set that still overflows
-- then is marked for another look-back.
local now = tonumber(ARGV[1])
local lookback = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local sensor = ARGV[5]
local settled = now + lookback / 2
local i = 6
for k = 1, #KEYS do
  local key = KEYS[k]
  local n = tonumber(ARGV[i])
  i = i + 1
  local mark = tonumber(redis.call('ZSCORE', key, 'p'))
  if mark and mark >= settled then
    i = i + 2 * n
  else
    if n > 0 then
      local args = {}
      for _ = 1, n do
        args[#args + 1] = ARGV[i + 1]
        args[#args + 1] = ARGV[i] .. sensor
        i = i + 2
      end
      redis.call('ZADD', key, 'GT', unpack(args))
    end
    local size = redis.call('ZCARD', key)
    if mark then
      size = size - 1
    end
    if size > cap then
      -- Members that left the look-back go first (and a popular mark that ran out).
      local removed = redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - lookback))
      size = size - removed
      if mark and mark < now - lookback then
        size = size + 1
      end
      local excess = size - cap
      if excess > 0 then
        -- More subscribers within the look-back than the set keeps: popular until the
        -- look-back passes without overflow; the oldest members make room.
        redis.call('ZADD', key, 'GT', now + lookback, 'p')
        local oldest = redis.call('ZRANGE', key, 0, excess)
        local drop = {}
        for _, m in ipairs(oldest) do
          if #drop < excess and m ~= 'p' then
            drop[#drop + 1] = m
          end
        end
        redis.call('ZREM', key, unpack(drop))
      end
    end
  end
  redis.call('EXPIRE', key, ttl)
end
return 0
