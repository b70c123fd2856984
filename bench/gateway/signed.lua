-- wrk script for bench/gateway/run: every request signed as docs/signing.md says
-- (TB1-HMAC-SM3, a fresh nonce per request). SM3 and HMAC-SM3 in LuaJIT's `bit` library.
-- Env: TB_KEY_ID, TB_KEY (64 hex digits); the Authorization and X-Device-Id headers come from
-- wrk's -H options.
local bit = require("bit")
local band, bor, bxor, bnot, rol, lshift, tobit, tohex =
  bit.band, bit.bor, bit.bxor, bit.bnot, bit.rol, bit.lshift, bit.tobit, bit.tohex

local IV = { 0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e }
local T = {}
for j = 0, 63 do T[j] = rol(tobit(j < 16 and 0x79cc4519 or 0x7a879d8a), j % 32) end
local W, W1 = {}, {}

local function compress(V, s, off)
  for i = 0, 15 do
    local a, b, c, d = s:byte(off + 4 * i + 1, off + 4 * i + 4)
    W[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
  end
  for j = 16, 67 do
    local x = bxor(W[j - 16], W[j - 9], rol(W[j - 3], 15))
    W[j] = bxor(x, rol(x, 15), rol(x, 23), rol(W[j - 13], 7), W[j - 6])
  end
  for j = 0, 63 do W1[j] = bxor(W[j], W[j + 4]) end
  local A, B, C, D, E, F, G, H = V[1], V[2], V[3], V[4], V[5], V[6], V[7], V[8]
  for j = 0, 63 do
    local a12 = rol(A, 12)
    local SS1 = rol(tobit(a12 + E + T[j]), 7)
    local SS2 = bxor(SS1, a12)
    local TT1, TT2
    if j < 16 then
      TT1 = tobit(bxor(A, B, C) + D + SS2 + W1[j])
      TT2 = tobit(bxor(E, F, G) + H + SS1 + W[j])
    else
      TT1 = tobit(bor(band(A, B), band(A, C), band(B, C)) + D + SS2 + W1[j])
      TT2 = tobit(bor(band(E, F), band(bnot(E), G)) + H + SS1 + W[j])
    end
    D = C; C = rol(B, 9); B = A; A = TT1
    H = G; G = rol(F, 19); F = E; E = bxor(TT2, rol(TT2, 9), rol(TT2, 17))
  end
  V[1] = bxor(V[1], A); V[2] = bxor(V[2], B); V[3] = bxor(V[3], C); V[4] = bxor(V[4], D)
  V[5] = bxor(V[5], E); V[6] = bxor(V[6], F); V[7] = bxor(V[7], G); V[8] = bxor(V[8], H)
end

-- sm3(msg) -> 32 raw bytes
local function sm3(msg)
  local n = #msg
  local pad = 64 - ((n + 9) % 64)
  if pad == 64 then pad = 0 end
  local bits = n * 8
  local s = msg .. "\128" .. string.rep("\0", pad) .. "\0\0\0\0" ..
    string.char(band(bit.rshift(bits, 24), 255), band(bit.rshift(bits, 16), 255),
      band(bit.rshift(bits, 8), 255), band(bits, 255))
  local V = { tobit(IV[1]), tobit(IV[2]), tobit(IV[3]), tobit(IV[4]), tobit(IV[5]), tobit(IV[6]), tobit(IV[7]), tobit(IV[8]) }
  for off = 0, #s - 1, 64 do compress(V, s, off) end
  local out = {}
  for i = 1, 8 do
    local x = V[i]
    out[i] = string.char(band(bit.rshift(x, 24), 255), band(bit.rshift(x, 16), 255),
      band(bit.rshift(x, 8), 255), band(x, 255))
  end
  return table.concat(out)
end

local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end

local function xor_pad(key, b)
  local t = {}
  for i = 1, 64 do t[i] = string.char(bxor(key:byte(i) or 0, b)) end
  return table.concat(t)
end

local function hmac_sm3(key, msg)
  if #key > 64 then key = sm3(key) end
  return sm3(xor_pad(key, 0x5c) .. sm3(xor_pad(key, 0x36) .. msg))
end

local EMPTY_SM3 = hex(sm3(""))

local function canonical(method, path, query, body_sm3, ts, nonce, key_id)
  local items = {}
  for item in (query or ""):gmatch("[^&]+") do items[#items + 1] = item end
  table.sort(items)
  return table.concat({ "TB1-HMAC-SM3", method, path, table.concat(items, "&"), body_sm3, ts, nonce, key_id }, "\n")
end

-- Self-test against docs/signing.md's vector (run with `luajit signed.lua selftest`).
if arg and arg[1] == "selftest" then
  assert(hex(sm3("abc")) == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0", "sm3(abc)")
  local body = '{"name":"张三","amount":12}'
  assert(hex(sm3(body)) == "71797552d1d37eb4aaa984b30c42c436f621ec3c821bb5cf3a0050df068e0c4d", "sm3(body)")
  local text = canonical("POST", "/api/v1/applications", "size=10&page=2", hex(sm3(body)),
    "1764288000", "n0nce-AbCdEf123456", "sk-20261128-0001")
  assert(hex(hmac_sm3("0123456789abcdef0123456789abcdef", text)) ==
    "088ad9f61ebbd1237fe7d6a7fbe78854d0cf05a7c9e96a76e92d58ed27563d4d", "signature")
  print("signed.lua self-test passed")
  os.exit(0)
end

local KEY_ID = os.getenv("TB_KEY_ID")
local KEY = os.getenv("TB_KEY") and unhex(os.getenv("TB_KEY"))
local counter = 0
local prefix
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

-- Nonces: thread number, start time and a counter, so no two requests of a run (or of two
-- runs a second apart) share one.
function init(args)
  prefix = string.format("wrk%d-%d", tid or 0, os.time())
end

function request()
  counter = counter + 1
  local path, query = wrk.path:match("^([^?]*)%??(.*)$")
  local ts = tostring(os.time())
  local nonce = string.format("%s-%012d", prefix, counter)
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["X-Tb-Key-Id"] = KEY_ID
  headers["X-Tb-Timestamp"] = ts
  headers["X-Tb-Nonce"] = nonce
  headers["X-Tb-Signature"] = hex(hmac_sm3(KEY, canonical("GET", path, query, EMPTY_SM3, ts, nonce, KEY_ID)))
  return wrk.format("GET", wrk.path, headers)
end
