"""The Lua scripts of the Redis adapter: each batch operation is one command.

A script runs atomically on the server, so a conditional write (or the lease a read
puts on an empty key) cannot interleave with another client's write of the same key;
and redis-py packs one command for the whole batch instead of one per key.
"""

from __future__ import annotations


def _read_all(name: str) -> str:
    """Lua reading every key into the table ``name`` (nil where empty): MGET in slices
    of 1000 keys, within Lua's limit on unpacked arguments."""
    return f"""
local {name} = {{}}
local count = #KEYS
local first = 1
while first <= count do
  local last = math.min(first + 999, count)
  local part = redis.call('MGET', unpack(KEYS, first, last))
  for i = 1, #part do
    {name}[first + i - 1] = part[i]
  end
  first = last + 1
end
"""


COMPARE_AND_SET_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[3] == '' then
    redis.call('SET', KEYS[1], ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
  return 1
end
return 0
"""
"""KEYS[1] = the key; ARGV = expected bytes, new bytes, lifetime in ms ('' for none)."""

ADD_MANY_SCRIPT = """
local won = {}
for i, key in ipairs(KEYS) do
  local stored
  if ARGV[1] == '' then
    stored = redis.call('SET', key, ARGV[i + 1], 'NX')
  else
    stored = redis.call('SET', key, ARGV[i + 1], 'NX', 'PX', ARGV[1])
  end
  if stored then
    won[#won + 1] = i
  end
end
return won
"""
"""KEYS = the keys; ARGV = lifetime in ms ('' for none), then one value per key.
Returns the (1-based) positions of the keys it stored."""

GET_MANY_CLAIMING_SCRIPT = (
    _read_all("values")
    + """for i = 1, count do
  if not values[i] then
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
  end
end
return values
"""
)
"""KEYS = the keys; ARGV = the lease, its lifetime in ms. Returns the values as MGET does
(nil where the key was empty, and now holds the lease: the script runs atomically, so
nothing can fill a key between its read and the lease). MGET in slices of 1000 keys,
within Lua's limit on unpacked arguments."""

COMPARE_AND_SET_MANY_SCRIPT = """
local stored = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[2 * i] then
    if ARGV[1] == '' then
      redis.call('SET', key, ARGV[2 * i + 1])
    else
      redis.call('SET', key, ARGV[2 * i + 1], 'PX', ARGV[1])
    end
    stored[#stored + 1] = i
  end
end
return stored
"""
"""KEYS = the keys; ARGV = lifetime in ms ('' for none), then expected and new bytes per
key. Returns the (1-based) positions of the keys it swapped."""

FILL_MANY_SCRIPT = (
    _read_all("current")
    + """local stored = {}
for i = 1, count do
  if current[i] == ARGV[2] then
    if ARGV[1] == '' then
      redis.call('SET', KEYS[i], ARGV[i + 2])
    else
      redis.call('SET', KEYS[i], ARGV[i + 2], 'PX', ARGV[1])
    end
    stored[#stored + 1] = i
  end
end
return stored
"""
)
"""KEYS = the keys; ARGV = lifetime in ms ('' for none), the lease, then one value per
key. Stores each value where the key holds exactly the lease (one read's fill: its keys
share one lease, so it travels once, and one MGET replaces a GET per key). Returns the
(1-based) positions of the keys it stored."""
