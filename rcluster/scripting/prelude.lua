-- rcluster's Lua sandbox, run once per Lua state (chunk name "=rcluster").
--
-- It mirrors Redis 7.0's script_lua.c / eval.c set-up on a stock Lua 5.1
-- (Redis patches its Lua with read-only tables; we get the same behaviour
-- with metatables):
--   * the globals table is the sandbox itself: reading a missing global
--     raises "Script attempted to access nonexistent global variable",
--     writing one raises "Attempt to modify a readonly table", and the
--     library tables are read-only proxies; rawset refuses them too;
--   * only the globals Redis allows exist (no loadfile, dofile, print, io,
--     os, package, debug; lupa's "python" is removed);
--   * everything the sandbox needs from Python comes in as arguments and
--     lives in upvalues, out of the scripts' reach.
-- It returns a table of the internal entry points Python calls.
local py = ...
local G = _G
local _rawset, _rawget, _type, _error, _pcall, _select, _unpack, _next,
      _tostring, _setmetatable, _format, _concat, _gsub, _setfenv,
      _loadstring, _tonumber =
    rawset, rawget, type, error, pcall, select, unpack, next, tostring,
    setmetatable, string.format, table.concat, string.gsub, setfenv,
    loadstring, tonumber
local dbg = debug
local INTERNAL = "=rcluster"

-- Globals Redis removes (deny list) or never loads.
for _, name in ipairs({"python", "print", "dofile", "loadfile", "io", "os",
                       "package", "require", "module", "debug"}) do
    _rawset(G, name, nil)
end

local protected = _setmetatable({}, {__mode = "k"})

local function readonly_error()
    _error("Attempt to modify a readonly table", 2)
end

-- A read-only view of a library table.
local function protect(lib)
    local proxy = {}
    _setmetatable(proxy, {__index = lib, __newindex = readonly_error,
                          __metatable = false})
    protected[proxy] = true
    return proxy
end

G.rawset = function(t, k, v)
    if protected[t] then
        _error("Attempt to modify a readonly table", 0)
    end
    return _rawset(t, k, v)
end

local unwrap = py.unwrap
-- Redis's pcall: an error table {err=...} comes back as its message.
local function pack(...) return {n = _select("#", ...), ...} end
G.pcall = function(...)
    local r = pack(_pcall(...))
    if r[1] then return _unpack(r, 1, r.n) end
    local e = r[2]
    -- (a library function's message: called by pcall, a C function, so
    -- no position, as luaL_error gives)
    if _type(e) == "userdata" then e = unwrap(e) or e end
    if _type(e) == "table" then
        local m = e.err
        if _type(m) == "string" or _type(m) == "number" then e = m end
    end
    return false, e
end

-- The redis.* API ----------------------------------------------------------
local state = {resp = 2, running = false, loading = false}
local redis = {}

local function errtable(msg)
    -- luaPushErrorBuff: "-CODE msg" keeps its code, "msg" gets ERR.
    if msg:sub(1, 1) == "-" then
        local sp = msg:find(" ", 1, true)
        if sp then
            msg = msg:sub(2, sp - 1) .. " " .. msg:sub(sp + 1)
        else
            msg = "ERR " .. msg:sub(2)
        end
    else
        msg = "ERR " .. msg
    end
    msg = _gsub(_gsub(msg, "^[\r\n]+", ""), "[\r\n]+$", "")
    return {err = msg}
end

-- Python callables: C functions for Lua, so a tail call keeps the
-- script's frame (error positions), as Redis's C redis.call does.  A
-- failing redis.call raises a Python ScriptError carrying the error table;
-- unwrap() turns it back into the table wherever errors are caught.
redis.call = py.call
redis.pcall = py.pcall
redis.sha1hex = py.sha1hex
redis.error_reply = function(...)
    local e = ...
    if _select("#", ...) ~= 1 or _type(e) ~= "string" then
        return errtable("wrong number or type of arguments")
    end
    if e:sub(1, 1) ~= "-" then e = "-" .. e end
    return errtable(e)
end
redis.status_reply = function(...)
    local s = ...
    if _select("#", ...) ~= 1 or _type(s) ~= "string" then
        return errtable("wrong number or type of arguments")
    end
    return {ok = s}
end
redis.log = py.log
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.setresp = py.setresp
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA,
    redis.REPL_ALL = 0, 1, 2, 2, 3
redis.set_repl = py.set_repl
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = function(...)
    if _select("#", ...) == 0 then
        _error(errtable("Please specify at least one argument for this redis lib call"))
    end
    local ok = py.acl_check(...)
    if ok == nil then _error(errtable("Invalid command passed to redis.acl_check_cmd()")) end
    return ok
end
redis.REDIS_VERSION = py.version
redis.REDIS_VERSION_NUM = py.version_num

-- redis.register_function (the functions engine only: FUNCTION LOAD).
if py.register then
    local flag_names = {["no-writes"] = true, ["allow-oom"] = true,
                        ["allow-stale"] = true, ["no-cluster"] = true,
                        ["allow-cross-slot-keys"] = true}
    local function fail(msg) _error(errtable(msg)) end
    redis.register_function = function(...)
        if not state.loading then
            fail("redis.register_function can only be called on FUNCTION LOAD command")
        end
        local n = _select("#", ...)
        local name, fn, desc
        local flags = {}
        if n == 1 then
            local t = ...
            if _type(t) ~= "table" then
                fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
            end
            for k, v in _next, t do
                if _type(k) ~= "string" then
                    fail("named argument key given to redis.register_function is not a string")
                end
                local lk = k:lower()
                if lk == "function_name" then
                    if _type(v) ~= "string" then fail("function_name argument given to redis.register_function must be a string") end
                    name = v
                elseif lk == "description" then
                    if _type(v) ~= "string" then fail("description argument given to redis.register_function must be a string") end
                    desc = v
                elseif lk == "callback" then
                    if _type(v) ~= "function" then fail("callback argument given to redis.register_function must be a function") end
                    fn = v
                elseif lk == "flags" then
                    if _type(v) ~= "table" then fail("flags argument to redis.register_function must be a table representing function flags") end
                    local j = 1
                    while true do
                        local f = v[j]
                        if f == nil then break end
                        if _type(f) ~= "string" and _type(f) ~= "number" then fail("unknown flag given") end
                        f = _tostring(f):lower()
                        if not flag_names[f] then fail("unknown flag given") end
                        flags[#flags + 1] = f
                        j = j + 1
                    end
                else
                    fail("unknown argument given to redis.register_function")
                end
            end
            if not name then fail("redis.register_function must get a function name argument") end
            if not fn then fail("redis.register_function must get a callback argument") end
        elseif n == 2 then
            name, fn = ...
            if _type(name) ~= "string" then fail("first argument to redis.register_function must be a string") end
            if _type(fn) ~= "function" then fail("second argument to redis.register_function must be a function") end
        else
            fail("wrong number of arguments to redis.register_function")
        end
        local e = py.register(name, fn, desc, _unpack(flags))
        if e then fail(e) end
    end
end

-- math.random / randomseed on Redis's lrand48 (same sequence everywhere).
local math_proxy_src = {}
for k, v in _next, math do math_proxy_src[k] = v end
local floor = math.floor
math_proxy_src.random = function(...)
    local r = py.random()
    local n = _select("#", ...)
    if n == 0 then return r end
    if n == 1 then
        local u = ...
        if _tonumber(u) == nil then _error("bad argument #1 to 'random' (number expected, got " .. (n >= 1 and _type(u) or "no value") .. ")", 2) end
        u = floor(_tonumber(u))
        if u < 1 then _error("bad argument #1 to 'random' (interval is empty)", 2) end
        return floor(r * u) + 1
    end
    if n == 2 then
        local l, u = ...
        if _tonumber(l) == nil then _error("bad argument #1 to 'random' (number expected, got " .. _type(l) .. ")", 2) end
        if _tonumber(u) == nil then _error("bad argument #2 to 'random' (number expected, got " .. _type(u) .. ")", 2) end
        l, u = floor(_tonumber(l)), floor(_tonumber(u))
        if l > u then _error("bad argument #2 to 'random' (interval is empty)", 2) end
        return floor(r * (u - l + 1)) + l
    end
    _error("wrong number of arguments", 2)
end
math_proxy_src.randomseed = function(s)
    if _tonumber(s) == nil then _error("bad argument #1 to 'randomseed' (number expected, got " .. (s == nil and "no value" or _type(s)) .. ")", 2) end
    py.randomseed(floor(_tonumber(s)))
end

-- Libraries: Python-backed implementations (see libs.py).
for _, name in ipairs({"cjson", "bit", "cmsgpack", "struct"}) do
    local lib = py.libs[name]
    if lib then _rawset(G, name, lib) end
end

-- Read-only views of every library table.
_rawset(G, "math", math_proxy_src)
for _, name in ipairs({"string", "table", "math", "coroutine", "cjson",
                       "bit", "cmsgpack", "struct"}) do
    local lib = _rawget(G, name)
    if lib then _rawset(G, name, protect(lib)) end
end
local redis_lib = redis
_rawset(G, "redis", protect(redis))

-- Error handler: turn any error into {err=..., source=..., line=...},
-- pointing at the script's own frame (not ours, not a C function).
local function err_handler(err)
    local level, i = 2, nil
    while true do
        i = dbg.getinfo(level, "nSl")
        if not i or (i.what ~= "C" and i.source ~= INTERNAL) then break end
        level = level + 1
    end
    if _type(err) == "userdata" then
        local u = unwrap(err)
        if _type(u) == "string" then
            -- luaL_error's position: the script line that called the
            -- library function.
            if i and i.currentline and i.currentline > 0 then
                u = i.short_src .. ":" .. i.currentline .. ": " .. u
            end
            err = u
        elseif u ~= nil then
            err = u
        end
    end
    if _type(err) ~= "table" then
        err = {err = "ERR " .. _tostring(err)}
    end
    if i then
        err.source = i.source
        err.line = i.currentline
    end
    return err
end

-- Globals protection (luaSetErrorMetatable + read-only globals).
_setmetatable(G, {
    __index = function(t, k)
        -- lupa looks globals up from C (lua_getglobal "debug"): nil for
        -- those, the error for scripts.
        local caller = dbg.getinfo(2, "S")
        if caller == nil or caller.what == "C" then return nil end
        _error("Script attempted to access nonexistent global variable '" .. _tostring(k) .. "'", 2)
    end,
    __newindex = readonly_error,
    __metatable = false,
})
protected[G] = true

-- Function libraries' environment (function_lua.c): while FUNCTION LOAD
-- runs the library body, the only global is a reduced ``redis`` (register_
-- function, log, LOG_*, REDIS_VERSION*); the functions it registers see
-- the full globals when they run.
local function missing_global(k)
    _error("Script attempted to access nonexistent global variable '" .. _tostring(k) .. "'", 3)
end
local load_redis = {}
for _, name in ipairs({"register_function", "log", "LOG_DEBUG", "LOG_VERBOSE",
                       "LOG_NOTICE", "LOG_WARNING", "REDIS_VERSION",
                       "REDIS_VERSION_NUM"}) do
    load_redis[name] = _rawget(redis_lib, name)
end
_setmetatable(load_redis, {__index = function(t, k) missing_global(k) end,
                           __newindex = readonly_error, __metatable = false})
protected[load_redis] = true
local lib_env = {}
_setmetatable(lib_env, {
    __index = function(t, k)
        local v
        if state.loading then
            if k == "redis" then v = load_redis end
        else
            v = _rawget(G, k)
        end
        if v == nil then missing_global(k) end
        return v
    end,
    __newindex = readonly_error,
    __metatable = false,
})
protected[lib_env] = true

-- Lua value -> RESP, as luaReplyToRedisReply writes it for the caller.
local function clean(s) return (_gsub(s, "[\r\n]", " ")) end
local function reply(v, out, resp3, sresp)
    local t = _type(v)
    if t == "string" then
        out[#out + 1] = "$" .. #v .. "\r\n" .. v .. "\r\n"
    elseif t == "number" then
        out[#out + 1] = ":" .. _format("%d", v) .. "\r\n"
    elseif t == "boolean" then
        if sresp == 2 then
            if v then out[#out + 1] = ":1\r\n"
            else out[#out + 1] = resp3 and "_\r\n" or "$-1\r\n" end
        elseif resp3 then
            out[#out + 1] = v and "#t\r\n" or "#f\r\n"
        else
            out[#out + 1] = v and ":1\r\n" or ":0\r\n"
        end
    elseif t == "table" then
        local f = _rawget(v, "err")
        if _type(f) == "string" then
            out[#out + 1] = "-" .. clean(f) .. "\r\n"
            return
        end
        f = _rawget(v, "ok")
        if _type(f) == "string" then
            out[#out + 1] = "+" .. clean(f) .. "\r\n"
            return
        end
        f = _rawget(v, "double")
        if _type(f) == "number" then
            local s = _format("%.17g", f)
            if resp3 then out[#out + 1] = "," .. s .. "\r\n"
            else out[#out + 1] = "$" .. #s .. "\r\n" .. s .. "\r\n" end
            return
        end
        f = _rawget(v, "big_number")
        if _type(f) == "string" then
            local s = clean(f)
            if resp3 then out[#out + 1] = "(" .. s .. "\r\n"
            else out[#out + 1] = "$" .. #s .. "\r\n" .. s .. "\r\n" end
            return
        end
        f = _rawget(v, "verbatim_string")
        if _type(f) == "table" then
            local fmt, s = _rawget(f, "format"), _rawget(f, "string")
            if _type(fmt) == "string" and _type(s) == "string" then
                if resp3 then
                    fmt = (fmt .. "\0\0\0"):sub(1, 3)
                    out[#out + 1] = "=" .. (#s + 4) .. "\r\n" .. fmt .. ":" .. s .. "\r\n"
                else
                    out[#out + 1] = "$" .. #s .. "\r\n" .. s .. "\r\n"
                end
                return
            end
        end
        f = _rawget(v, "map")
        if _type(f) == "table" then
            local at, n = #out + 1, 0
            out[at] = ""
            for k, x in _next, f do
                reply(k, out, resp3, sresp)
                reply(x, out, resp3, sresp)
                n = n + 1
            end
            out[at] = resp3 and ("%" .. n .. "\r\n") or ("*" .. 2 * n .. "\r\n")
            return
        end
        f = _rawget(v, "set")
        if _type(f) == "table" then
            local at, n = #out + 1, 0
            out[at] = ""
            for k in _next, f do
                reply(k, out, resp3, sresp)
                n = n + 1
            end
            out[at] = (resp3 and "~" or "*") .. n .. "\r\n"
            return
        end
        local at, j = #out + 1, 1
        out[at] = ""
        while true do
            local x = _rawget(v, j)
            if x == nil then break end
            reply(x, out, resp3, sresp)
            j = j + 1
        end
        out[at] = "*" .. (j - 1) .. "\r\n"
    else
        out[#out + 1] = resp3 and "_\r\n" or "$-1\r\n"
    end
end

-- The count hook (see scripting/__init__.py: "Long scripts").
local interrupt = py.interrupt
local kill_message = "Script killed by user with SCRIPT KILL..."
local function kill_hook()
    local i = dbg.getinfo(2, "S")
    if i and (i.source == INTERNAL or i.what == "C") then return end
    _error(errtable(kill_message))
end
local function count_hook()
    local verdict = interrupt()
    if verdict then
        kill_message = verdict
        -- As Redis: from now on every line raises, so pcall can't save it.
        dbg.sethook(kill_hook, "l")
        _error(errtable(verdict))
    end
end

local function finish(ok, v, resp3)
    if not ok then
        -- v is the handler's table (or, if the handler failed, anything).
        if _type(v) ~= "table" then
            return "error", "ERR Error running script, " .. _tostring(v), nil, nil
        end
        local msg = v.err
        if _type(msg) ~= "string" and _type(msg) ~= "number" then msg = "" end
        return "error", _tostring(msg), v.source, v.line
    end
    if _type(v) == "table" then
        local e = _rawget(v, "err")
        if _type(e) == "string" then return "error", e, nil, nil end
    end
    local out = {}
    reply(v, out, resp3, state.resp)
    return "ok", _concat(out)
end

local function prepare(hook_count, keys, args)
    state.resp = 2
    state.running = true
    if hook_count > 0 then dbg.sethook(count_hook, "", hook_count) end
end

local function cleanup(hook_count)
    if hook_count > 0 then dbg.sethook() end
    state.running = false
end

local api = {}

-- EVAL: fn runs with KEYS and ARGV as globals.
function api.run_eval(fn, resp3, hook_count, nkeys, ...)
    local keys, args, n = {}, {}, _select("#", ...)
    local all = {...}
    for i = 1, nkeys do keys[i] = all[i] end
    for i = nkeys + 1, n do args[i - nkeys] = all[i] end
    _rawset(G, "KEYS", keys)
    _rawset(G, "ARGV", args)
    prepare(hook_count)
    local ok, v = xpcall(fn, err_handler)
    cleanup(hook_count)
    return finish(ok, v, resp3)
end

-- FCALL: fn(keys, args).
function api.run_function(fn, resp3, hook_count, nkeys, ...)
    local keys, args, n = {}, {}, _select("#", ...)
    local all = {...}
    for i = 1, nkeys do keys[i] = all[i] end
    for i = nkeys + 1, n do args[i - nkeys] = all[i] end
    prepare(hook_count)
    local ok, v = xpcall(function() return fn(keys, args) end, err_handler)
    cleanup(hook_count)
    return finish(ok, v, resp3)
end

-- FUNCTION LOAD: run a library's body (it registers its functions).
function api.load_library(fn, hook_count)
    state.loading = true
    if hook_count > 0 then dbg.sethook(count_hook, "", hook_count) end
    local ok, v = xpcall(fn, err_handler)
    if hook_count > 0 then dbg.sethook() end
    state.loading = false
    if ok then return true end
    if _type(v) == "table" then
        local m = v.err
        return false, (_type(m) == "string" or _type(m) == "number") and _tostring(m) or ""
    end
    return false, _tostring(v)
end

-- Compile a script body; returns the function, or nil and the message.
function api.compile(body, chunkname)
    local fn, err = _loadstring(body, chunkname)
    if not fn then return nil, err end
    if chunkname == "@user_function" then _setfenv(fn, lib_env) end
    return fn, false
end

api.errtable = errtable
api.redis = redis_lib
api.G = G
api.rawset = _rawset
api.protect = protect
api.err_handler = err_handler
api.state = state
api.sethook = dbg.sethook
api.interrupt_hook = count_hook
return api
