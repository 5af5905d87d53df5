-- Table- and string-heavy Lua workload for scripts/bench.  Lua allocates
-- through one realloc-style hook (realloc/free), so this exercises realloc.
--     lua5.4 tables.lua [N]
local n = tonumber(arg and arg[1]) or 100000

local records = {}
for i = 1, n do
  records[i] = { id = i, name = "item" .. i, vals = { i, i * 2, i * 3 }, tag = "t" .. (i % 97) }
end

table.sort(records, function(a, b)
  if a.tag ~= b.tag then return a.tag < b.tag end
  return a.id > b.id
end)

local parts = {}
for i = 1, n, 2 do
  local r = records[i]
  parts[#parts + 1] = r.name .. ":" .. r.tag .. ":" .. (r.vals[1] + r.vals[2] + r.vals[3])
end
local joined = table.concat(parts, ",")

local count = 0
for _ in joined:gmatch("item(%d+)") do count = count + 1 end
local replaced = joined:gsub("item", "entry")

local index = {}
for i = 1, n do
  local key = records[i].tag
  local bucket = index[key]
  if not bucket then bucket = {}; index[key] = bucket end
  bucket[#bucket + 1] = records[i].name
end

local churn = 0
for round = 1, 4 do
  local tmp = {}
  for i = 1, n // 2 do tmp[i] = string.rep("x", 1 + (i + round) % 40) .. i end
  churn = churn + #tmp[#tmp]
end

print(#joined, count, #replaced, churn)
