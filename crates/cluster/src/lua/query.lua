-- Global prevalence of sets (endpoints' and prefixes').
-- KEYS: the sets. ARGV: per set, the start of the look-back then the second asked for (s).
-- Returns per set: its subscribers, popular (0/1), and the sensors that saw it.
local function look(key, lo, at)
  local list = redis.call('ZRANGEBYSCORE', key, lo, '+inf')
  local subs, sensors = {}, {}
  local nsubs, nsensors = 0, 0
  for _, m in ipairs(list) do
    if m ~= 'p' then
      local who = string.sub(m, 1, 8)
      local where = string.sub(m, 9)
      if not subs[who] then
        subs[who] = true
        nsubs = nsubs + 1
      end
      if not sensors[where] then
        sensors[where] = true
        nsensors = nsensors + 1
      end
    end
  end
  local mark = redis.call('ZSCORE', key, 'p')
  local popular = 0
  if mark and tonumber(mark) > at then
    popular = 1
  end
  return nsubs, popular, nsensors
end
local out = {}
for k = 1, #KEYS do
  local n, pop, sensors = look(KEYS[k], tonumber(ARGV[2 * k - 1]), tonumber(ARGV[2 * k]))
  out[#out + 1] = n
  out[#out + 1] = pop
  out[#out + 1] = sensors
end
return out
