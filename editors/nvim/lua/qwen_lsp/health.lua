--- :checkhealth qwen_lsp
local M = {}

local health = vim.health

--- Run the server's command with `args` appended; its result, or nil and why not.
local function run(config, args, timeout_ms)
  local cmd = vim.list_extend(vim.deepcopy(config.cmd), args)
  local ok, proc = pcall(vim.system, cmd, { text = true, env = config.cmd_env })
  if not ok then
    return nil, tostring(proc)
  end
  local result = proc:wait(timeout_ms)
  if result.signal ~= 0 then
    return nil, ("`%s` did not finish in %d s"):format(table.concat(cmd, " "), timeout_ms / 1000)
  end
  return result
end

local function check_neovim()
  health.start("qwen_lsp: Neovim")
  local version = tostring(vim.version())
  if vim.fn.has("nvim-0.12") == 1 and vim.lsp.inline_completion then
    health.ok("Neovim " .. version .. " with vim.lsp.inline_completion")
  else
    health.error("Neovim " .. version .. " has no native inline completion", {
      "Install Neovim 0.12 or newer (vim.lsp.inline_completion, LSP 3.18).",
    })
  end
end

--- The doctor's advice in the words of this plugin: its options are set in setup(), not
--- with the command line's flags or VS Code's `qwenLsp.` names.
---@param fix string
---@return string
function M.advice(fix)
  fix = fix:gsub(
    "pass %-%-model with the path of a valid %.gguf file",
    'set `model = { path = "/path/to/model.gguf" }` in setup()'
  )
  return (fix:gsub("qwenLsp%.([%w]+)%.([%w]+)", "`%1.%2` (in setup())"))
end

--- The server's `doctor --json` checks (Python, llama-cpp-python, GPU build, model).
local function check_doctor(config)
  -- The user's settings tree, so the model checked is the one configured (model.path)
  -- and its trained context is compared with their model.contextSize.
  local args = { "doctor", "--json", "--settings", vim.json.encode(config.init_options or {}) }
  health.start("qwen_lsp: qwen-lsp doctor")
  local result, err = run(config, args, 20000)
  local ok, report = pcall(vim.json.decode, result and result.stdout or "")
  if not (ok and type(report) == "table" and report.checks) then
    health.warn("`qwen-lsp doctor --json` gave no report: " .. (err or vim.trim(result.stderr)))
    return
  end
  for _, check in ipairs(report.checks) do
    local line = ("%s: %s"):format(check.name, check.detail)
    local advice = check.fix ~= "" and { M.advice(check.fix) } or nil
    if check.status == "ok" then
      health.ok(line)
    elseif check.status == "warn" then
      health.warn(line, advice)
    else
      health.error(line, advice)
    end
  end
end

local function check_server()
  health.start("qwen_lsp: server")
  local config = vim.lsp.config.qwen_lsp
  if not vim.lsp.is_enabled("qwen_lsp") then
    health.warn("the server is not enabled", { 'Call require("qwen_lsp").setup() in your config.' })
  end
  if not config or type(config.cmd) == "function" then
    health.info("`cmd` is a function: the server command cannot be checked")
    return
  end
  if type(config.cmd) ~= "table" or type(config.cmd[1]) ~= "string" then
    health.error(("`cmd` must be a list of strings, not %s"):format(vim.inspect(config.cmd)), {
      'Set `server = { cmd = { "qwen-lsp" } }` in setup().',
    })
    return
  end
  if vim.fn.executable(config.cmd[1]) == 0 then
    health.error(("`%s` is not executable"):format(config.cmd[1]), {
      "Install the server (pip install qwen-lsp) or set `server = { cmd = { ... } }` in setup().",
    })
    return
  end
  local result, err = run(config, { "--version" }, 10000)
  if not result or result.code ~= 0 then
    local why = err or vim.trim(result.stderr)
    health.error(("`%s --version` failed: %s"):format(config.cmd[1], why))
    return
  end
  health.ok(("%s (%s)"):format(vim.trim(result.stdout), table.concat(config.cmd, " ")))
  check_doctor(config)
end

--- What the running servers say about their model and index.
local function check_clients()
  health.start("qwen_lsp: running servers")
  local clients = vim.lsp.get_clients({ name = "qwen_lsp" })
  if #clients == 0 then
    health.info("none (the server starts when a file is opened)")
  end
  for _, client in ipairs(clients) do
    local response = client:request_sync("qwenLsp/stats", vim.empty_dict(), 2000)
    if response and response.result then
      local stats = response.result
      local line = ("client %d: %s"):format(client.id, require("qwen_lsp").status_line(stats))
      if stats.model == "failed" or stats.model == "disabled" then -- no completions
        health.error(line, { "See the server's log (`server = { cmd = { \"qwen-lsp\", \"--log-file\", PATH } }`), then :QwenLsp restart." })
      elseif stats.model == "ready" then
        health.ok(line)
      else
        health.info(line) -- starting, loading
      end
    else
      health.warn(("client %d did not answer qwenLsp/stats"):format(client.id))
    end
  end
end

function M.check()
  check_neovim()
  check_server()
  check_clients()
end

return M
