-- Contacts of one flush, for many endpoint (or prefix) sets at once.
-- KEYS: the sets. ARGV: now (s), look-back (s), cap, ttl (s), sensor suffix, then for each
-- key: its member count n, then n times (member, second).
-- A set holds up to `cap` members (subscriber pseudonym .. sensor suffix, scored by the last
-- second seen) and the mark 'p' (scored by the second until which the endpoint is popular).
local now = tonumber(ARGV[1])
local lookback = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local sensor = ARGV[5]
local i = 6
local popular = 0
for k = 1, #KEYS do
  local key = KEYS[k]
  local n = tonumber(ARGV[i])
  i = i + 1
  local args = {}
  for _ = 1, n do
    args[#args + 1] = ARGV[i + 1]
    args[#args + 1] = ARGV[i] .. sensor
    i = i + 2
  end
  if n > 0 then
    redis.call('ZADD', key, 'GT', unpack(args))
  end
  local function members()
    local size = redis.call('ZCARD', key)
    if redis.call('ZSCORE', key, 'p') then
      return size - 1
    end
    return size
  end
  if redis.call('ZCARD', key) > cap and members() > cap then
    -- Members that left the look-back go first (and a popular mark that ran out).
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - lookback))
    local excess = members() - cap
    if excess > 0 then
      -- More subscribers within the look-back than the set keeps: popular until the
      -- look-back passes without overflow; the oldest members make room.
      redis.call('ZADD', key, 'GT', now + lookback, 'p')
      local oldest = redis.call('ZRANGE', key, 0, excess)
      for _, m in ipairs(oldest) do
        if excess > 0 and m ~= 'p' then
          redis.call('ZREM', key, m)
          excess = excess - 1
        end
      end
      popular = popular + 1
    end
  end
  redis.call('EXPIRE', key, ttl)
end
return popular
