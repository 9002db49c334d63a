#!/usr/bin/env lua5.3
--[[
fsharness.lua -- run a FreeSWITCH mod_lua xml_handler script the way mod_lua does.

Usage:
  lua5.3 lua/harness/fsharness.lua SHIM.lua LOOKUPS.json [INDEX]
  lua5.3 lua/harness/fsharness.lua SHIM.lua --section S [--tag T] [--key-name N]
         [--key-value V] [--param NAME=VALUE ...] [--no-params] [--arg WORD ...]

  LOOKUPS.json has the format of shared/fixtures/fs-requests/*.json:
    {"scenario":..., "how":..., "lookups":[{"section","tag_name","key_name",
     "key_value","params":{HEADER: VALUE, ...} | null}, ...]}
  (a bare JSON array of lookups, or a single lookup object, is accepted too).
  INDEX is 1-based. With INDEX (or a file of one lookup, or the flag form) the run
  is a "single lookup"; otherwise every lookup is run in order.

  Flag form: missing --tag/--key-name/--key-value are "" (as mod_lua does for C NULL).
  --param NAME=VALUE (repeatable, split at the first '=') adds event headers in the
  given order. Without any --param, `params` is an EMPTY event; --no-params makes
  `params` nil (what mod_lua does when the lookup carries no event).
  --arg WORD (repeatable) fills argv[1..] (argv[0] is the shim path), like the words
  after the script name in lua.conf's xml-handler-script.

Output (stdout):
  single lookup: XML_STRING exactly as the script left it (nothing if nil); exit 0,
                 or exit 3 (error printed on stderr) if loading/running the script failed.
  several:       for each lookup N (1-based) a line
                   ----- lookup N: SECTION KEY_VALUE -----
                 then its XML_STRING (a newline is added if it does not end with one).
                 A failing lookup prints its error on stderr and nothing on stdout;
                 the exit status is 3 if any lookup failed, else 0.
  Exit 2: usage error, unreadable or invalid JSON, INDEX out of range.
  A number XML_STRING is converted to a string (mod_lua uses lua_tostring); any other
  non-string value counts as nil.

What each lookup gets (emulating mod_lua.cpp lua_fetch / lua_init):
  * a fresh global environment table (its __index falls back to the real _G for the
    standard libraries), in which the shim is loaded anew from disk with loadfile;
  * XML_REQUEST = {section=, tag_name=, key_name=, key_value=}  (missing -> "");
  * params: an object behaving like SWIG's freeswitch.Event userdata:
      params:getHeader(name)    -> string or nil (header names case-insensitive)
      params:serialize()        -> "Name: url-encoded-value\n" per header, then "\n"
                                   (switch_event_serialize with encode=TRUE;
                                    empty value -> "_undef_")
      params:serialize("json")  -> {"Name":"value",...} (cJSON_PrintUnformatted)
      params:serialize("xml")   -> best effort <event><headers>..</headers></event>
      params:addHeader(n, v), params:delHeader(n), params:getBody(),
      params:addBody(s), params:getType(), params:setPriority() (no-op)
    Calling a method with '.' instead of ':' raises an error, as SWIG does.
  * argv = {[0]=SHIM, ...--arg words}
  * freeswitch.consoleLog(level, msg)   -> stderr "[LEVEL] msg"
    freeswitch.consoleCleanLog(msg)     -> stderr msg
    freeswitch.getGlobalVariable(name)  -> env FSCONF_HARNESS_GLOBAL_<name>, else nil
    freeswitch.msleep(ms)               -> no-op
    freeswitch.Event(type)              -> a new event carrying FreeSWITCH-Hostname /
                                           FreeSWITCH-Switchname from env FSCONF_HARNESS_HOSTNAME /
                                           FSCONF_HARNESS_SWITCHNAME (when set), as switch_event_create does
  * os.exit replaced by a function that logs "Surely you jest!..." (mod_lua's lua_init).

Limits of a pure-Lua emulation (one lua_State for all lookups):
  * C modules and modules loaded with require() see the real _G, not the per-lookup
    environment. So that a C module reading globals (lua_getglobal) still finds them,
    freeswitch / XML_REQUEST / params / argv are ALSO set in the real _G during the
    lookup; XML_STRING is read from the per-lookup environment, else from the real
    _G. After each lookup, globals added to the real _G are removed and entries added
    to package.loaded are dropped, so the next lookup require()s its modules again
    (luaopen_* runs again, as in a new state). A C library itself stays loaded (its
    handle is kept until the process exits), unlike mod_lua where lua_close dlcloses it.
  * `params` is a table, not a userdata: type(params) == "table".
]]

local real_G = _G
local real_exit = os.exit
local stderr, stdout = io.stderr, io.stdout

local function die(code, msg)
  stderr:write("fsharness: ", msg, "\n")
  real_exit(code)
end

---------------------------------------------------------------------------
-- JSON decoder (pure Lua). Objects remember key order in json_order[obj].
---------------------------------------------------------------------------
local json_order = setmetatable({}, { __mode = "k" })
local json_null = setmetatable({}, { __tostring = function() return "null" end })

local function json_decode(text)
  local pos = 1
  local byte, sub, find = string.byte, string.sub, string.find

  local function err(msg)
    -- compute line/column for a helpful message
    local line, col = 1, 1
    for i = 1, math.min(pos - 1, #text) do
      if byte(text, i) == 10 then line = line + 1; col = 1 else col = col + 1 end
    end
    error(string.format("JSON error at line %d column %d: %s", line, col, msg), 0)
  end

  local function skip_ws()
    local _, e = find(text, "^[ \t\r\n]*", pos)
    pos = e + 1
  end

  local function utf8_encode(cp)
    if cp < 0x80 then
      return string.char(cp)
    elseif cp < 0x800 then
      return string.char(0xC0 | (cp >> 6), 0x80 | (cp & 0x3F))
    elseif cp < 0x10000 then
      return string.char(0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F))
    else
      return string.char(0xF0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3F),
                         0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F))
    end
  end

  local escapes = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f',
                    n = '\n', r = '\r', t = '\t' }

  local function read_hex4()
    local h = sub(text, pos, pos + 3)
    if not find(h, "^%x%x%x%x$") then err("bad \\u escape") end
    pos = pos + 4
    return tonumber(h, 16)
  end

  local function parse_string()
    -- pos is at the opening quote
    pos = pos + 1
    local parts, n = {}, 0
    while true do
      local s, e = find(text, '^[^"\\\0-\31]+', pos)
      if s then
        n = n + 1; parts[n] = sub(text, s, e); pos = e + 1
      end
      local c = sub(text, pos, pos)
      if c == '"' then
        pos = pos + 1
        return table.concat(parts)
      elseif c == '\\' then
        local esc = sub(text, pos + 1, pos + 1)
        if esc == 'u' then
          pos = pos + 2
          local cp = read_hex4()
          if cp >= 0xD800 and cp <= 0xDBFF then
            if sub(text, pos, pos + 1) ~= "\\u" then err("lone high surrogate") end
            pos = pos + 2
            local lo = read_hex4()
            if lo < 0xDC00 or lo > 0xDFFF then err("bad low surrogate") end
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
          elseif cp >= 0xDC00 and cp <= 0xDFFF then
            err("lone low surrogate")
          end
          n = n + 1; parts[n] = utf8_encode(cp)
        elseif escapes[esc] then
          n = n + 1; parts[n] = escapes[esc]; pos = pos + 2
        else
          err("bad escape \\" .. esc)
        end
      elseif c == "" then
        err("unterminated string")
      else
        err("control character in string")
      end
    end
  end

  local parse_value

  local function parse_number()
    local s0 = pos
    local _, e = find(text, "^-?%d+", pos)
    if not e then err("bad number") end
    if find(text, "^-?0%d", pos) then err("leading zero in number") end
    local is_float = false
    local _, e2 = find(text, "^%.%d+", e + 1)
    if e2 then e = e2; is_float = true end
    local _, e3 = find(text, "^[eE][-+]?%d+", e + 1)
    if e3 then e = e3; is_float = true end
    pos = e + 1
    local str = sub(text, s0, e)
    if is_float then return tonumber(str) end
    return math.tointeger(tonumber(str)) or tonumber(str)
  end

  local function parse_array()
    pos = pos + 1
    local arr, n = {}, 0
    skip_ws()
    if sub(text, pos, pos) == "]" then pos = pos + 1; return arr end
    while true do
      n = n + 1
      arr[n] = parse_value()
      skip_ws()
      local c = sub(text, pos, pos)
      if c == "," then pos = pos + 1
      elseif c == "]" then pos = pos + 1; return arr
      else err("expected ',' or ']'") end
    end
  end

  local function parse_object()
    pos = pos + 1
    local obj, order = {}, {}
    json_order[obj] = order
    skip_ws()
    if sub(text, pos, pos) == "}" then pos = pos + 1; return obj end
    while true do
      skip_ws()
      if sub(text, pos, pos) ~= '"' then err("expected string key") end
      local k = parse_string()
      skip_ws()
      if sub(text, pos, pos) ~= ":" then err("expected ':'") end
      pos = pos + 1
      local v = parse_value()
      if obj[k] == nil then order[#order + 1] = k end
      obj[k] = v
      skip_ws()
      local c = sub(text, pos, pos)
      if c == "," then pos = pos + 1
      elseif c == "}" then pos = pos + 1; return obj
      else err("expected ',' or '}'") end
    end
  end

  function parse_value()
    skip_ws()
    local c = sub(text, pos, pos)
    if c == "{" then return parse_object()
    elseif c == "[" then return parse_array()
    elseif c == '"' then return parse_string()
    elseif c == "-" or find(c, "^%d$") then return parse_number()
    elseif sub(text, pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif sub(text, pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif sub(text, pos, pos + 3) == "null" then pos = pos + 4; return json_null
    elseif c == "" then err("unexpected end of input")
    else err("unexpected character '" .. c .. "'") end
  end

  if sub(text, 1, 3) == "\239\187\191" then pos = 4 end -- UTF-8 BOM
  local v = parse_value()
  skip_ws()
  if pos <= #text then err("trailing data") end
  return v
end

---------------------------------------------------------------------------
-- Event emulation (SWIG freeswitch.Event)
---------------------------------------------------------------------------
local URL_UNSAFE = {}
for c in ("\r\n #%&+:;<=>?@[\\]^`{|}\""):gmatch(".") do URL_UNSAFE[c] = true end

-- switch_url_encode: bytes < 0x20 or > 0x7E (incl. all of UTF-8's high bytes) and the
-- SWITCH_URL_UNSAFE set become %XX (upper-case hex); '%' is always encoded.
local function url_encode(s)
  return (s:gsub(".", function(c)
    local b = c:byte()
    if b < 0x20 or b > 0x7E or URL_UNSAFE[c] then
      return string.format("%%%02X", b)
    end
  end))
end

-- cJSON print_string escaping
local function json_escape(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"'
    elseif c == '\\' then return '\\\\'
    elseif c == '\b' then return '\\b'
    elseif c == '\f' then return '\\f'
    elseif c == '\n' then return '\\n'
    elseif c == '\r' then return '\\r'
    elseif c == '\t' then return '\\t'
    elseif c:byte() < 32 then return string.format("\\u%04x", c:byte())
    end
    return c -- DEL (0x7f) is %c in Lua but cJSON prints it raw
  end) .. '"'
end

local function xml_escape(s)
  return (s:gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

local event_state = setmetatable({}, { __mode = "k" }) -- event object -> {names=, values=, body=}
local Event = {}
local event_mt = { __index = Event, __name = "Event",
                   __tostring = function(self) return "Event userdata (fsharness)" end,
                   __metatable = "Event" }

local function check_self(self, method)
  local st = rawequal(self, nil) and nil or event_state[self]
  if not st then
    error(string.format("Error in Event::%s (arg 1), expected 'Event *' got '%s'",
                        method, type(self)), 3)
  end
  return st
end

local function opt_string(v, method, argn)
  if v == nil then return nil end
  if type(v) == "number" then return tostring(v) end
  if type(v) ~= "string" then
    error(string.format("Error in Event::%s (arg %d), expected 'char const *' got '%s'",
                        method, argn, type(v)), 3)
  end
  return v
end

local function find_header(st, name)
  local lname = name:lower()
  for i = 1, #st.names do
    if st.names[i]:lower() == lname then return i end
  end
  return nil
end

function Event.getHeader(self, name)
  local st = check_self(self, "getHeader")
  name = opt_string(name, "getHeader", 2)
  if name == nil then return nil end
  local i = find_header(st, name)
  if i then return st.values[i] end
  return nil
end

function Event.addHeader(self, name, value)
  local st = check_self(self, "addHeader")
  name = opt_string(name, "addHeader", 2)
  value = opt_string(value, "addHeader", 3)
  if name == nil or value == nil then return false end
  st.names[#st.names + 1] = name
  st.values[#st.values + 1] = value
  return true
end

function Event.delHeader(self, name)
  local st = check_self(self, "delHeader")
  name = opt_string(name, "delHeader", 2)
  if name == nil then return false end
  local found = false
  local lname = name:lower()
  for i = #st.names, 1, -1 do
    if st.names[i]:lower() == lname then
      table.remove(st.names, i); table.remove(st.values, i); found = true
    end
  end
  return found
end

function Event.getBody(self)
  local st = check_self(self, "getBody")
  return st.body
end

function Event.addBody(self, body)
  local st = check_self(self, "addBody")
  body = opt_string(body, "addBody", 2)
  if body == nil then return false end
  st.body = (st.body or "") .. body
  return true
end

function Event.getType(self)
  local st = check_self(self, "getType")
  local i = find_header(st, "Event-Name")
  return i and st.values[i] or "REQUEST_PARAMS"
end

function Event.setPriority(self)
  check_self(self, "setPriority")
  return true
end

function Event.serialize(self, format)
  local st = check_self(self, "serialize")
  format = opt_string(format, "serialize", 2)
  local fmt = format and format:lower() or nil
  local out = {}
  if fmt == "json" then
    for i = 1, #st.names do
      out[#out + 1] = json_escape(st.names[i]) .. ":" .. json_escape(st.values[i])
    end
    if st.body then
      out[#out + 1] = json_escape("Content-Length") .. ":" .. json_escape(tostring(#st.body))
      out[#out + 1] = json_escape("_body") .. ":" .. json_escape(st.body)
    end
    return "{" .. table.concat(out, ",") .. "}"
  elseif fmt == "xml" then
    -- best effort only; not byte-exact with switch_xml_toxml
    out[1] = "<event>\n  <headers>\n"
    for i = 1, #st.names do
      out[#out + 1] = string.format("    <%s>%s</%s>\n", st.names[i],
                                    xml_escape(url_encode(st.values[i])), st.names[i])
    end
    out[#out + 1] = "  </headers>\n"
    if st.body and #st.body > 0 then
      out[#out + 1] = string.format("  <Content-Length>%d</Content-Length>\n  <body>%s</body>\n",
                                    #st.body, xml_escape(st.body))
    end
    out[#out + 1] = "</event>"
    return table.concat(out)
  else
    for i = 1, #st.names do
      local enc = url_encode(st.values[i])
      if enc == "" then enc = "_undef_" end
      out[#out + 1] = st.names[i] .. ": " .. enc .. "\n"
    end
    if st.body and #st.body > 0 then
      out[#out + 1] = string.format("Content-Length: %d\n\n%s", #st.body, st.body)
    else
      out[#out + 1] = "\n"
    end
    return table.concat(out)
  end
end

local function new_event(names, values)
  local ev = setmetatable({}, event_mt)
  event_state[ev] = { names = names, values = values, body = nil }
  return ev
end

---------------------------------------------------------------------------
-- freeswitch module emulation
---------------------------------------------------------------------------
local function make_freeswitch()
  local fs = {}
  function fs.consoleLog(level, msg)
    level = tostring(level or "info"):upper()
    msg = msg == nil and "" or tostring(msg)
    if msg:sub(-1) ~= "\n" then msg = msg .. "\n" end
    stderr:write("[", level, "] ", msg)
    stderr:flush()
  end
  function fs.consoleCleanLog(msg)
    msg = msg == nil and "" or tostring(msg)
    stderr:write(msg)
    stderr:flush()
  end
  function fs.getGlobalVariable(name)
    if type(name) ~= "string" then return nil end
    return os.getenv("FSCONF_HARNESS_GLOBAL_" .. name)
  end
  function fs.msleep(ms) end
  -- freeswitch.Event(type[, subclass]): switch_event_create stamps every new event
  -- with the node's FreeSWITCH-Hostname and FreeSWITCH-Switchname
  -- (env FSCONF_HARNESS_HOSTNAME / FSCONF_HARNESS_SWITCHNAME; absent when unset).
  function fs.Event(type_name, subclass)
    local names, values = { "Event-Name" }, { tostring(type_name or "MESSAGE") }
    local host, switch = os.getenv("FSCONF_HARNESS_HOSTNAME"), os.getenv("FSCONF_HARNESS_SWITCHNAME")
    if host then names[#names + 1] = "FreeSWITCH-Hostname"; values[#values + 1] = host end
    if switch then names[#names + 1] = "FreeSWITCH-Switchname"; values[#values + 1] = switch end
    if subclass then names[#names + 1] = "Event-Subclass"; values[#values + 1] = tostring(subclass) end
    return new_event(names, values)
  end
  return fs
end

-- mod_lua's lua_init replaces os.exit in every new state.
os.exit = function()
  make_freeswitch().consoleLog("err", "Surely you jest! exiting is a bad plan....\n")
end

---------------------------------------------------------------------------
-- Running one lookup
---------------------------------------------------------------------------
local INJECTED = { "freeswitch", "XML_REQUEST", "params", "argv", "XML_STRING" }

-- lookup = {section=, tag_name=, key_name=, key_value=, names=list|nil, values=list|nil}
-- returns ok, xml_string_or_nil, err
local function run_lookup(shim, lookup, args)
  local function s(v) if type(v) == "string" then return v end
                      if v == nil or v == json_null then return "" end
                      return tostring(v) end
  local xml_request = {
    section = s(lookup.section), tag_name = s(lookup.tag_name),
    key_name = s(lookup.key_name), key_value = s(lookup.key_value),
  }
  local params = nil
  if lookup.names then
    local names, values = {}, {}
    for i = 1, #lookup.names do names[i] = lookup.names[i]; values[i] = lookup.values[i] end
    params = new_event(names, values)
  end
  local argv = { [0] = shim }
  for i = 1, #args do argv[i] = args[i] end
  local fs = make_freeswitch()

  local env = setmetatable({}, { __index = real_G })
  env._G = env
  env.freeswitch = fs
  env.XML_REQUEST = xml_request
  env.params = params
  env.argv = argv

  -- snapshot real _G and package.loaded so the lookup leaves no trace
  local g_before, loaded_before = {}, {}
  for k in pairs(real_G) do g_before[k] = true end
  for k in pairs(package.loaded) do loaded_before[k] = true end
  local saved = {}
  for _, k in ipairs(INJECTED) do saved[k] = rawget(real_G, k) end
  rawset(real_G, "freeswitch", fs)
  rawset(real_G, "XML_REQUEST", xml_request)
  rawset(real_G, "params", params)
  rawset(real_G, "argv", argv)
  rawset(real_G, "XML_STRING", nil)

  local ok, err
  local chunk, lerr = loadfile(shim, "bt", env)
  if not chunk then
    ok, err = false, lerr
  else
    ok, err = xpcall(chunk, function(m)
      if type(m) ~= "string" then m = tostring(m) end
      return m
    end)
  end

  local xml = rawget(env, "XML_STRING")
  if xml == nil then xml = rawget(real_G, "XML_STRING") end
  if type(xml) == "number" then xml = tostring(xml)
  elseif type(xml) ~= "string" then xml = nil end

  -- restore
  for k in pairs(real_G) do
    if not g_before[k] then rawset(real_G, k, nil) end
  end
  for _, k in ipairs(INJECTED) do rawset(real_G, k, saved[k]) end
  for k in pairs(package.loaded) do
    if not loaded_before[k] then package.loaded[k] = nil end
  end

  if not ok then return false, nil, err end
  return true, xml, nil
end

---------------------------------------------------------------------------
-- Command line
---------------------------------------------------------------------------
local USAGE = [[
usage: lua5.3 fsharness.lua SHIM.lua LOOKUPS.json [INDEX]
       lua5.3 fsharness.lua SHIM.lua --section S [--tag T] [--key-name N] [--key-value V]
              [--param NAME=VALUE ...] [--no-params] [--arg WORD ...]
       (--arg WORD also works after LOOKUPS.json)]]

local argv_in = arg or {}
if #argv_in < 2 then die(2, "\n" .. USAGE) end
local shim = argv_in[1]

local lookups = {}
local single = false
local extra_args = {}

local function lookup_from_json(l, n)
  if type(l) ~= "table" then die(2, "lookup " .. n .. " is not an object") end
  local lk = { section = l.section, tag_name = l.tag_name, key_name = l.key_name,
               key_value = l.key_value }
  local p = l.params
  if p ~= nil and p ~= json_null then
    if type(p) ~= "table" then die(2, "lookup " .. n .. ": params is not an object") end
    local order = json_order[p] or {}
    lk.names, lk.values = {}, {}
    for _, k in ipairs(order) do
      local v = p[k]
      if v == json_null then v = ""
      elseif type(v) == "table" then
        -- array headers are not expected (README: none occurred); join like FS ARRAY::
        local parts = {}
        for i = 1, #v do parts[i] = tostring(v[i]) end
        v = "ARRAY::" .. table.concat(parts, "|:")
      elseif type(v) ~= "string" then v = tostring(v) end
      lk.names[#lk.names + 1] = k
      lk.values[#lk.values + 1] = v
    end
  end
  return lk
end

if argv_in[2]:sub(1, 2) == "--" then
  single = true
  local lk = { section = nil, tag_name = nil, key_name = nil, key_value = nil,
               names = {}, values = {} }
  local no_params = false
  local i = 2
  while i <= #argv_in do
    local a = argv_in[i]
    local function val()
      i = i + 1
      if argv_in[i] == nil then die(2, a .. " needs a value\n" .. USAGE) end
      return argv_in[i]
    end
    if a == "--section" then lk.section = val()
    elseif a == "--tag" or a == "--tag-name" then lk.tag_name = val()
    elseif a == "--key-name" then lk.key_name = val()
    elseif a == "--key-value" then lk.key_value = val()
    elseif a == "--param" then
      local p = val()
      local eq = p:find("=", 1, true)
      if not eq then die(2, "--param needs NAME=VALUE, got " .. p) end
      lk.names[#lk.names + 1] = p:sub(1, eq - 1)
      lk.values[#lk.values + 1] = p:sub(eq + 1)
    elseif a == "--no-params" then no_params = true
    elseif a == "--arg" then extra_args[#extra_args + 1] = val()
    elseif a == "-h" or a == "--help" then stdout:write(USAGE, "\n"); real_exit(0)
    else die(2, "unknown option " .. a .. "\n" .. USAGE) end
    i = i + 1
  end
  if no_params then lk.names, lk.values = nil, nil end
  lookups[1] = lk
else
  local path = argv_in[2]
  local index = nil
  local i = 3
  while i <= #argv_in do
    local a = argv_in[i]
    if a == "--arg" then
      i = i + 1
      if argv_in[i] == nil then die(2, "--arg needs a value") end
      extra_args[#extra_args + 1] = argv_in[i]
    elseif index == nil and a:match("^%d+$") then
      index = tonumber(a)
    else
      die(2, "unexpected argument " .. a .. "\n" .. USAGE)
    end
    i = i + 1
  end
  local f, ferr = io.open(path, "rb")
  if not f then die(2, "cannot open " .. path .. ": " .. tostring(ferr)) end
  local text = f:read("a")
  f:close()
  local ok, doc = pcall(json_decode, text)
  if not ok then die(2, path .. ": " .. tostring(doc)) end
  local list
  if type(doc) == "table" and doc.lookups ~= nil then
    list = doc.lookups
  elseif type(doc) == "table" and json_order[doc] == nil then
    list = doc -- bare array
  elseif type(doc) == "table" and doc.section ~= nil then
    list = { doc } -- a single lookup object
  else
    die(2, path .. ": no \"lookups\" array")
  end
  if type(list) ~= "table" or json_order[list] ~= nil then die(2, path .. ": lookups is not an array") end
  if index then
    if index < 1 or index > #list then
      die(2, string.format("INDEX %d out of range 1..%d", index, #list))
    end
    lookups[1] = lookup_from_json(list[index], index)
    single = true
  else
    for n = 1, #list do lookups[n] = lookup_from_json(list[n], n) end
    single = (#list == 1)
  end
end

if single then
  local ok, xml, err = run_lookup(shim, lookups[1], extra_args)
  if not ok then
    stderr:write("fsharness: script error: ", tostring(err), "\n")
    real_exit(3)
  end
  if xml then stdout:write(xml) end
  stdout:flush()
  real_exit(0)
else
  local failed = false
  for n, lk in ipairs(lookups) do
    local function s(v) if type(v) == "string" then return v end return "" end
    stdout:write(string.format("----- lookup %d: %s %s -----\n", n, s(lk.section), s(lk.key_value)))
    local ok, xml, err = run_lookup(shim, lk, extra_args)
    if not ok then
      failed = true
      stdout:flush()
      stderr:write(string.format("fsharness: lookup %d: script error: %s\n", n, tostring(err)))
      stderr:flush()
    elseif xml then
      stdout:write(xml)
      if xml ~= "" and xml:sub(-1) ~= "\n" then stdout:write("\n") end
    end
    stdout:flush()
  end
  real_exit(failed and 3 or 0)
end
