--- qwen-lsp for Neovim 0.12: registers the server with `vim.lsp.config`, turns on the
--- native inline completion for it, and adds what the native client lacks: partial
--- accept (word, line), keymaps with fallbacks, stats, status and restart.
local M = {}

local NAME = "qwen_lsp"
-- The server's settings sections (docs/configuration.md); the other options are the client's.
local SECTIONS = { "model", "completion", "context", "engine", "codeActions", "protocol", "diagnostics" }

local defaults = {
  -- Extra `vim.lsp.Config` fields (cmd, cmd_env, filetypes, root_markers, ...) on top of
  -- lsp/qwen_lsp.lua.
  server = {},
  -- Insert-mode keys in buffers the server is attached to; false turns one off.
  keymaps = {
    accept = "<Tab>",
    accept_word = "<M-Right>",
    accept_line = "<M-Down>",
    dismiss = "<C-]>",
  },
}

M.config = vim.deepcopy(defaults)
-- Inline completion on or off (`:QwenLsp toggle`), kept across server restarts.
M.enabled = true

--- vim.validate, its message without a code location (it is about the user's config).
local function validate(name, value, validator, message)
  local ok, err = pcall(vim.validate, name, value, validator, false, message)
  if not ok then
    error(err, 0)
  end
end

--- Check one option; raises its message when invalid.
local function check_option(key, value)
  do
    if key == "keymaps" then
      if value == false then
        return -- no keys at all: the user maps the <Plug> mappings or the Lua functions
      end
      validate(key, value, "table")
      for action, lhs in pairs(value) do
        if defaults.keymaps[action] == nil then
          local actions = vim.tbl_keys(defaults.keymaps)
          table.sort(actions)
          error(("keymaps.%s: unknown action (%s)"):format(action, table.concat(actions, ", ")), 0)
        end
        validate("keymaps." .. action, lhs, function(v)
          return (type(v) == "string" and v ~= "") or v == false
        end, "a key (non-empty string) or false")
      end
    elseif key == "server" then
      validate(key, value, "table")
      -- vim.lsp.Config's cmd: a list of strings, or a function that starts the RPC client.
      validate("server.cmd", value.cmd, function(v)
        if v == nil or type(v) == "function" then
          return true
        end
        if type(v) ~= "table" or #v == 0 then
          return false
        end
        for _, part in ipairs(v) do
          if type(part) ~= "string" then
            return false
          end
        end
        return true
      end, 'a list of strings, e.g. { "qwen-lsp" }, or a function')
    elseif vim.list_contains(SECTIONS, key) then
      validate(key, value, "table")
    else
      local known = table.concat(vim.list_extend({ "server", "keymaps" }, SECTIONS), ", ")
      error(("%s: unknown option (%s)"):format(key, known), 0)
    end
  end
end

--- The valid part of `opts`, and the messages of the invalid options (left out, so
--- their defaults apply).
local function check(opts)
  validate("opts", opts, "table")
  local valid, errors = {}, {}
  local keys = vim.tbl_keys(opts)
  table.sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  for _, key in ipairs(keys) do
    local ok, err = pcall(check_option, key, opts[key])
    if ok then
      valid[key] = opts[key]
    else
      table.insert(errors, err)
    end
  end
  return valid, errors
end

--- The settings tree as the server reads it; empty sections are left out because an
--- empty Lua table would go over the wire as a JSON list.
local function server_settings(opts)
  local settings = vim.empty_dict()
  for _, section in ipairs(SECTIONS) do
    if opts[section] and next(opts[section]) then
      settings[section] = opts[section]
    end
  end
  return settings
end

-- ---- accepting ----------------------------------------------------------------------

--- The next word of `text`: leading blanks, then a run of word characters or a run of
--- other symbols. Bytes >= 0x80 count as word characters so no UTF-8 letter is split.
local function next_word(text)
  return text:match("^%s*[%w_\128-\255]+") or text:match("^%s*[^%w_%s\128-\255]+") or text
end

--- The rest of the current line; at a line break, the break and the whole next line.
local function next_line(text)
  return text:match("^\n?[^\n]*")
end

--- What of `item` is left to insert at the cursor, and the column up to which it replaces
--- the text after the cursor. Nil when the buffer no longer matches the suggestion.
local function remaining(item)
  local text = item.insert_text
  if type(text) ~= "string" then
    return nil -- a snippet: this server never sends one
  end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local range = item.range
  if not range then
    return text, col
  end
  if range.start.row ~= row - 1 or range.start.col > col then
    return nil
  end
  -- The range starts where the suggestion was asked for: skip what was typed since.
  local line = vim.api.nvim_get_current_line()
  local typed = line:sub(range.start.col + 1, col)
  if text:sub(1, #typed) ~= typed then
    return nil
  end
  local rest = text:sub(#typed + 1)
  -- The server replaces closing brackets after the cursor that the suggestion ends with
  -- (moved right by what was typed since); do so only when the suggestion really
  -- re-inserts them, so nothing typed is lost.
  local to = range.end_.row == row - 1 and range.end_.col + #typed or col
  local tail = line:sub(col + 1, to)
  return rest, (#tail > 0 and vim.endswith(rest, tail)) and to or col
end

--- Insert `text` at the cursor (replacing up to column `to` of the line) and move after it.
local function put(text, to)
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local lines = vim.split(text, "\n", { plain = true })
  vim.api.nvim_buf_set_text(0, row - 1, col, row - 1, to or col, lines)
  vim.api.nvim_win_set_cursor(0, { row + #lines - 1, (#lines == 1 and col or 0) + #lines[#lines] })
end

--- Accept the suggestion shown, or the part `pick` returns. The rest is asked for again
--- as soon as the cursor moves; the server answers it from its cache (typed-through).
local function accept(pick)
  return vim.lsp.inline_completion.get({
    on_accept = function(item)
      local rest, to = remaining(item)
      if rest then
        local part = pick and pick(rest) or rest
        -- Only the whole suggestion may replace the closing text after the cursor.
        put(part, part == rest and to or nil)
      end
    end,
  })
end

--- Accept the whole suggestion; false when none is shown.
---@return boolean
function M.accept()
  return accept()
end

--- Accept the next word of the suggestion; false when none is shown.
---@return boolean
function M.accept_word()
  return accept(next_word)
end

--- Accept the suggestion up to the end of the line; false when none is shown.
---@return boolean
function M.accept_line()
  return accept(next_line)
end

--- Hide the suggestion; false when none is shown.
---@return boolean
function M.dismiss()
  return vim.lsp.inline_completion.get({ on_accept = function() end })
end

--- What `lhs` did before the plugin mapped it in insert mode (the buffer's own mapping,
--- else the global one: a snippet jump, a completion menu's key), or nil for the key itself.
local function previous_mapping(lhs)
  local map = vim.fn.maparg(lhs, "i", false, true)
  if type(map) ~= "table" or not next(map) then
    return nil
  end
  return not (map.desc and vim.startswith(map.desc, "qwen-lsp: ")) and map or nil
end

--- Do what `lhs` did before: run or feed the previous mapping, or the key itself.
local function fall_through(lhs, map)
  if not map then
    vim.api.nvim_feedkeys(vim.keycode(lhs), "in", false)
    return
  end
  local keys
  if map.callback then
    keys = map.callback()
    if map.expr ~= 1 then
      return
    end
  elseif map.expr == 1 then
    keys = vim.api.nvim_eval(map.rhs)
  else
    keys = map.rhs
  end
  if type(keys) ~= "string" or keys == "" then
    return
  end
  if not map.callback or map.replace_keycodes == 1 then
    keys = vim.keycode(keys)
  end
  -- A mapping whose keys start with its own key does not map them again (as in Vim).
  local noremap = map.noremap == 1 or vim.startswith(keys, vim.keycode(lhs))
  vim.api.nvim_feedkeys(keys, noremap and "in" or "im", false)
end

local ACTIONS = { "accept", "accept_word", "accept_line", "dismiss" }

-- Our keys per buffer, with what each key did before (functions: not in vim.b).
local buffer_keys = {}

local function set_keymaps(bufnr)
  if not M.config.keymaps or buffer_keys[bufnr] then
    return
  end
  local set = {}
  vim.api.nvim_buf_call(bufnr, function()
    for _, action in ipairs(ACTIONS) do
      local lhs = M.config.keymaps[action]
      if lhs then
        local before = previous_mapping(lhs)
        vim.keymap.set("i", lhs, function()
          -- An active snippet's jump wins over a suggestion (<Tab> in a snippet moves on).
          local jump = action == "accept" and vim.snippet and vim.snippet.active({ direction = 1 })
          if jump or M[action]() == false then
            fall_through(lhs, before)
          end
        end, { buffer = bufnr, desc = "qwen-lsp: " .. action:gsub("_", " ") })
        table.insert(set, { lhs = lhs, before = before })
      end
    end
  end)
  buffer_keys[bufnr] = set
end

--- Remove our keys from the buffer, giving back its own mappings of them.
local function clear_keymaps(bufnr)
  local set = buffer_keys[bufnr]
  if not set then
    return
  end
  for _, key in ipairs(set) do
    pcall(vim.keymap.del, "i", key.lhs, { buffer = bufnr })
    if key.before and key.before.buffer == 1 then
      vim.api.nvim_buf_call(bufnr, function()
        vim.fn.mapset("i", false, key.before)
      end)
    end
  end
  buffer_keys[bufnr] = nil
end

-- ---- on / off -----------------------------------------------------------------------

local function clients()
  return vim.lsp.get_clients({ name = NAME })
end

local function say(message)
  vim.notify("qwen-lsp: " .. message, vim.log.levels.INFO)
end

--- Turn inline completion on in `bufnr` for our client only. Neovim's switch for a
--- buffer turns it on for every client in it: the others that it turned on are turned
--- back off (client by client: the native API has no switch per client and buffer).
-- Buffers whose switch our attach turned on (it was off): a client that attaches there
-- later must not find it on (below, `keep_others_off`).
local turned_on = {}

local function attach(client, bufnr)
  if not vim.lsp.inline_completion.is_enabled({ bufnr = bufnr }) then
    turned_on[bufnr] = true
  end
  local others = {}
  for _, other in ipairs(vim.lsp.get_clients({ bufnr = bufnr })) do
    if other.id ~= client.id then
      others[other.id] = vim.lsp.inline_completion.is_enabled({ bufnr = bufnr, client_id = other.id })
    end
  end
  vim.lsp.inline_completion.enable(true, { client_id = client.id })
  vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  for id, was in pairs(others) do
    if not was and vim.lsp.inline_completion.is_enabled({ bufnr = bufnr, client_id = id }) then
      vim.lsp.inline_completion.enable(false, { client_id = id })
    end
  end
end

--- Another client attaching after ours to a buffer whose switch we turned on would be
--- on there too (a client is on unless turned off): it is turned off, as in `attach`.
local function keep_others_off(client, bufnr)
  if turned_on[bufnr]
    and vim.lsp.inline_completion.is_enabled({ bufnr = bufnr, client_id = client.id })
  then
    vim.lsp.inline_completion.enable(false, { client_id = client.id })
  end
end

-- Clients whose inline requests are guarded (below).
local guarded = setmetatable({}, { __mode = "k" })

--- Neovim asks for an inline completion 200 ms after a keystroke at the cursor of the
--- *current* window, for the buffer typed in: after a quick switch to another buffer it
--- asks at another buffer's cursor, and fails to draw the answer ("Invalid window id").
--- Our client asks only for the current buffer, and drops an answer that arrives after
--- a switch.
local function guard_requests(client)
  if guarded[client] then
    return
  end
  guarded[client] = true
  local request = client.request
  client.request = function(self, method, params, handler, bufnr)
    if method ~= "textDocument/inlineCompletion" or not handler then
      return request(self, method, params, handler, bufnr)
    end
    local target = vim.uri_to_bufnr(params.textDocument.uri)
    if target ~= vim.api.nvim_get_current_buf() then
      return true, nil
    end
    return request(self, method, params, function(err, result, ctx)
      handler(err, target == vim.api.nvim_get_current_buf() and result or nil, ctx)
    end, bufnr)
  end
end

--- Turn inline completion on (default) or off in every buffer the server is attached to.
---@param on? boolean
function M.enable(on)
  M.enabled = on ~= false
  for _, client in ipairs(clients()) do
    if M.enabled then
      for bufnr in pairs(client.attached_buffers) do
        attach(client, bufnr)
      end
    else
      vim.lsp.inline_completion.enable(false, { client_id = client.id })
    end
  end
  say("inline completion " .. (M.enabled and "on" or "off"))
end

function M.disable()
  M.enable(false)
end

function M.toggle()
  M.enable(not M.enabled)
end

-- ---- code actions --------------------------------------------------------------------

--- The diagnostics on line `lnum` from every source (other servers, linters), as LSP.
local function line_diagnostics(bufnr, lnum)
  return vim.tbl_map(function(d)
    local lsp = d.user_data and d.user_data.lsp
    return lsp or {
      range = {
        start = { line = d.lnum, character = d.col },
        ["end"] = { line = d.end_lnum or d.lnum, character = d.end_col or d.col },
      },
      message = d.message,
      severity = d.severity,
      source = d.source,
    }
  end, vim.diagnostic.get(bufnr, { lnum = lnum }))
end

--- Qwen's code actions at the cursor (or the selection): a fix for each problem on the
--- line, whichever tool reported it, and rewrites of the definition around it. Neovim's
--- own vim.lsp.buf.code_action() sends a server only the diagnostics it published, so
--- with it only the rewrites appear.
function M.code_action()
  local lnum = vim.api.nvim_win_get_cursor(0)[1] - 1
  vim.lsp.buf.code_action({
    context = { diagnostics = line_diagnostics(0, lnum) },
    -- Only ours (the filter sees no client): they carry their plan, or our command.
    filter = function(action)
      local command = type(action.command) == "table" and action.command.command
      return type(action.data) == "table" and action.data.plan ~= nil
        or command == "qwenLsp.applyCodeAction"
    end,
  })
end

-- ---- stats, status, restart ---------------------------------------------------------

local function request_stats(callback)
  local client = vim.lsp.get_clients({ name = NAME, bufnr = 0 })[1] or clients()[1]
  if not client then
    local missing = M.missing_command()
    local message = missing or "qwen-lsp: the server is not running (see :checkhealth qwen_lsp)"
    vim.notify(message, vim.log.levels.WARN)
    return
  end
  client:request("qwenLsp/stats", vim.empty_dict(), function(err, result)
    if err then
      vim.notify("qwen_lsp: qwenLsp/stats failed: " .. err.message, vim.log.levels.ERROR)
    else
      callback(result)
    end
  end)
end

--- The engine process that holds the model, in a few words: shared by how many editors,
--- or this server's own ("" when none is attached: not loaded yet, a serving engine).
local function engine_words(e)
  if type(e) ~= "table" then
    return ""
  end
  if not e.shared then
    return "; own engine"
  end
  local n = type(e.editors) == "table" and #e.editors or 0
  return ("; engine shared by %d editor%s"):format(n, n == 1 and "" or "s")
end

--- One line: the model's and the index's state, whether inline completion is on, and the
--- engine process (shared by how many editors).
---@param stats table a `qwenLsp/stats` result
---@return string
function M.status_line(stats)
  local function describe(state, message)
    return (message and message ~= "") and message:gsub("%.$", "") or state
  end
  return ("qwen-lsp: model %s; index %s; inline completion %s%s"):format(
    describe(stats.model, stats.modelMessage),
    describe(stats.index, stats.indexMessage),
    M.enabled and "on" or "off",
    engine_words(stats.engineProcess)
  )
end

function M.status()
  request_stats(function(stats)
    vim.notify(M.status_line(stats), vim.log.levels.INFO)
  end)
end

local function stats_lines(s)
  local lines = {
    M.status_line(s),
    ("requests %d: %d from cache, %d empty, %d cancelled, %d errors (up %d s)"):format(
      s.requests, s.cacheHits, s.empty, s.cancelled, s.errors, s.uptimeS),
    ("tokens: %d prompt, %d reused, %d evaluated, %d generated"):format(
      s.promptTokens, s.reusedTokens, s.evaluatedTokens, s.generatedTokens),
    ("time: %d ms prefill, %d ms generation; prompt format %s"):format(
      s.prefillMs, s.generateMs, s.promptFormat or "-"),
  }
  if type(s.checkpoints) == "table" then
    local c = s.checkpoints
    table.insert(lines, ("checkpoints: %d (%.1f of %.1f MB), %d hits, %d misses"):format(
      c.count, c.bytes / 1e6, c.maxBytes / 1e6, c.hits, c.misses))
  end
  if type(s.engineProcess) == "table" then -- the engine process (shared by the editors)
    local e, names = s.engineProcess, {}
    for _, editor in ipairs(e.editors or {}) do
      table.insert(names, editor.name)
    end
    table.insert(lines, ("engine: %s, pid %s, %d editor(s) attached: %s"):format(
      e.shared and "shared" or "private", tostring(e.pid), #names, table.concat(names, ", ")))
  end
  table.insert(lines, "")
  table.insert(lines, "recent, newest first:")
  for i = #s.recent, 1, -1 do
    local r = s.recent[i]
    table.insert(lines, ("  %s %s %s %.0f ms: %d prompt, %d evaluated, %d generated"):format(
      r.kind, vim.fs.basename(r.path), r.outcome, r.totalMs,
      r.promptTokens, r.evaluatedTokens, r.generatedTokens))
  end
  return lines
end

--- `qwenLsp/stats` in a float (q closes it).
function M.stats()
  request_stats(function(stats)
    local lines = stats_lines(stats)
    local buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
    vim.bo[buf].modifiable = false
    vim.bo[buf].bufhidden = "wipe"
    local widest = math.max(unpack(vim.tbl_map(vim.api.nvim_strwidth, lines)))
    local width = math.min(vim.o.columns - 4, widest)
    -- Rows, not lines: a line wider than the window wraps (the last one was hidden).
    local rows = 0
    for _, line in ipairs(lines) do
      rows = rows + math.max(1, math.ceil(vim.api.nvim_strwidth(line) / width))
    end
    local height = math.min(vim.o.lines - 4 - vim.o.cmdheight, rows)
    vim.api.nvim_open_win(buf, true, {
      relative = "editor",
      width = width,
      height = height,
      row = math.floor((vim.o.lines - height) / 2) - 1,
      col = math.floor((vim.o.columns - width) / 2),
      style = "minimal",
      border = "rounded",
      title = " qwen-lsp stats ",
    })
    vim.keymap.set("n", "q", "<Cmd>close<CR>", { buffer = buf, nowait = true })
  end)
end

--- Stop the server and start it again (e.g. after installing a new version).
function M.restart()
  local old = clients()
  for _, client in ipairs(old) do
    client:stop()
  end
  -- Start again once the old servers have exited and freed the model; force after 5 s.
  local tries = 0
  local function start()
    tries = tries + 1
    local running = vim.tbl_filter(function(c)
      return not c:is_stopped()
    end, old)
    if #running > 0 then
      if tries == 100 then
        for _, client in ipairs(running) do
          client:stop(true)
        end
      end
      vim.defer_fn(start, 50)
      return
    end
    vim.lsp.enable(NAME)
    say("restarted the server")
  end
  start()
end

-- ---- setup --------------------------------------------------------------------------

--- The message for a server command that is not installed, or nil when it runs.
---@return string?
function M.missing_command()
  local cmd = (vim.lsp.config[NAME] or {}).cmd
  if type(cmd) ~= "table" or type(cmd[1]) ~= "string" or vim.fn.executable(cmd[1]) == 1 then
    return nil
  end
  return ("qwen-lsp: the server program `%s` was not found. Install it (pip install qwen-lsp), "
    .. 'or give its full path: setup({ server = { cmd = { "/path/to/qwen-lsp" } } })'):format(cmd[1])
end

--- Ghost text must not look like code. Neovim's `ComplHint` links to `NonText`, which the
--- default colour scheme gives only a GUI colour: without 'termguicolors' the suggestion
--- is drawn in the text's own colour. Unless a colour scheme sets `ComplHint` itself, it
--- gets a grey for 256-colour terminals too, and italics.
local function ghost_highlight()
  local hl = vim.api.nvim_get_hl(0, { name = "ComplHint" })
  if hl.link and hl.link ~= "NonText" then
    return -- the colour scheme's (or the user's) own
  end
  local own = not hl.link and next(hl) ~= nil and hl.ctermfg ~= nil
  if own then
    return
  end
  local base = vim.api.nvim_get_hl(0, { name = "NonText", link = false })
  vim.api.nvim_set_hl(0, "ComplHint", {
    fg = base.fg or "#808080",
    ctermfg = base.ctermfg or 244,
    italic = true,
    cterm = { italic = true },
  })
end

--- Progress of our server (model load, indexing, code actions) in the message area, as
--- it happens: a code action takes seconds.
local function show_progress(args)
  local client = vim.lsp.get_client_by_id(args.data.client_id)
  local value = args.data.params and args.data.params.value
  if not client or client.name ~= NAME or type(value) ~= "table" then
    return
  end
  M.progress = M.progress or {}
  local token = args.data.params.token
  if value.kind == "begin" then
    M.progress[token] = value.title
  end
  local title = M.progress[token] or "qwen-lsp"
  local text = value.kind == "end" and (title .. ": " .. (value.message or "done"))
    or (title .. (value.message and (": " .. value.message) or "") .. "…")
  if value.kind == "end" then
    M.progress[token] = nil
  end
  vim.api.nvim_echo({ { text } }, false, {})
end

--- Configure and enable the server. `opts`: the settings tree (model, completion,
--- context, engine; names as in docs/configuration.md) and the client's options (server,
--- keymaps). An invalid option gets one error message and its default; setup() then
--- returns false (true when every option was valid).
---@param opts? table
---@return boolean
function M.setup(opts)
  if not vim.lsp.inline_completion then
    local message = "qwen_lsp: needs Neovim 0.12 or newer (vim.lsp.inline_completion)"
    vim.notify(message, vim.log.levels.ERROR)
    return false
  end
  local ok, valid, errors = pcall(check, opts or {})
  if not ok then
    valid, errors = {}, { valid }
  end
  if #errors > 0 then
    local message = "qwen_lsp: invalid setup option: %s (see :help qwen_lsp-setup); "
      .. "the defaults apply"
    vim.notify(message:format(table.concat(errors, "; ")), vim.log.levels.ERROR)
  end
  M.config = vim.tbl_deep_extend("force", defaults, valid)
  if valid.keymaps == false then
    M.config.keymaps = false
  end
  local settings = server_settings(valid)
  local server = M.config.server
  -- Both ways in: initializationOptions at start, and `workspace/configuration`, which
  -- Neovim answers from `settings`; what the user put there themselves stays.
  vim.lsp.config(NAME, vim.tbl_extend("force", server, {
    init_options = vim.tbl_deep_extend("force", server.init_options or {}, settings),
    settings = vim.tbl_deep_extend("force", server.settings or {}, { qwenLsp = settings }),
  }))
  local group = vim.api.nvim_create_augroup("qwen_lsp", {})
  vim.api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if not client then
        return
      end
      if client.name ~= NAME then
        keep_others_off(client, args.buf)
        return
      end
      -- Native inline completion is off for buffers until turned on: on for ours only,
      -- and only while `:QwenLsp toggle` says so (M.enable turns it on later).
      guard_requests(client)
      if M.enabled then
        attach(client, args.buf)
      else
        vim.lsp.inline_completion.enable(false, { client_id = client.id })
      end
      set_keymaps(args.buf)
    end,
  })
  vim.api.nvim_create_autocmd("LspDetach", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == NAME then
        clear_keymaps(args.buf)
      end
    end,
  })
  vim.api.nvim_create_autocmd("LspProgress", { group = group, callback = show_progress })
  vim.api.nvim_create_autocmd("ColorScheme", { group = group, callback = ghost_highlight })
  ghost_highlight()
  -- Not installed: say it once, with the fix, when the first buffer would start it
  -- (Neovim itself only writes it to its lsp.log).
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    once = true,
    callback = function()
      local missing = M.missing_command()
      if missing then
        vim.schedule(function() -- after the file has opened, not as its error
          vim.notify(missing, vim.log.levels.ERROR)
        end)
      end
    end,
  })
  vim.lsp.enable(NAME)
  return #errors == 0
end

return M
