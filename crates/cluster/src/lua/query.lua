-- Global prevalence of endpoints and their prefixes.
-- KEYS: per question, the endpoint's set then the prefix's set. ARGV: per question, the start
-- of the look-back then the second asked for (s).
-- Returns per question: subscribers of the endpoint, popular (0/1), subscribers of the
-- prefix, popular (0/1), sensors that saw the endpoint.
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
for q = 1, #KEYS / 2 do
  local lo = tonumber(ARGV[2 * q - 1])
  local at = tonumber(ARGV[2 * q])
  local n, pop, sensors = look(KEYS[2 * q - 1], lo, at)
  local pn, ppop = look(KEYS[2 * q], lo, at)
  out[#out + 1] = n
  out[#out + 1] = pop
  out[#out + 1] = pn
  out[#out + 1] = ppop
  out[#out + 1] = sensors
end
return out
