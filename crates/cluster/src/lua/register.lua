-- A sensor's number in the store (assigned once), after checking that it pseudonymises with
-- the store's key. KEYS: the sensor directory, the sequence, the key check. ARGV: sensor id,
-- key check value. Returns the number, or -1 when the key differs from the store's.
local check = redis.call('GET', KEYS[3])
if check and check ~= ARGV[2] then
  return -1
end
if not check then
  redis.call('SET', KEYS[3], ARGV[2])
end
local n = redis.call('HGET', KEYS[1], ARGV[1])
if n then
  return tonumber(n)
end
n = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], n)
return n
