#!/usr/bin/env bash
# A real Neovim 0.12 session with the plugin, driven by keystrokes through tmux: type at
# one place, jump 1,000 lines and type, add an import at the top, go back and type. Prints
# what the server and the engine logged for each completion (tokens evaluated, reused).
#
#   bench/nvim_session.sh PROJECT FILE MODEL.gguf [LINE]
#
# PROJECT: a source tree (e.g. `pip download --no-deps --no-binary :all: click==8.1.7`,
# unpacked); FILE: a file of 2,000+ lines in it; MODEL: e.g. the tiny qwen35 model on
# Qwen3.6's vocabulary (`python -c "from lsp_server.testing.tiny_gguf import cached_model;
# print(cached_model('qwen35-real', '/tmp/models'))"`). Needs tmux and nvim on PATH.
set -euo pipefail
project=$(realpath "$1"); file=$2; model=$(realpath "$3"); line=${4:-1000}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
export XDG_RUNTIME_DIR=$work/run XDG_CACHE_HOME=$work/cache
mkdir -m 700 "$XDG_RUNTIME_DIR"
cat > "$work/init.lua" <<LUA
vim.opt.rtp:prepend("$here/editors/nvim")
vim.opt.swapfile = false
require("qwen_lsp").setup({
  model = { path = "$model", nGpuLayers = 0 },
  server = { cmd = { "qwen-lsp", "--log-file", "$work/server.log", "--log-level", "DEBUG" } },
})
LUA
session=qwen-bench-$$
tmux new-session -d -s "$session" -x 160 -y 45 "cd $project && nvim -u $work/init.lua +$line $file"
t() { tmux send-keys -t "$session" "$@"; }
typed() { for ((i = 0; i < ${#1}; i++)); do t -l "${1:i:1}"; sleep "$2"; done; }
sleep 100                                     # load, index, warm-up of the file opened
t o; typed "rv = self." 0.6; sleep 40         # type where the file was opened
t Escape; t ":$((line + 1000))" Enter; t o; typed "x = ctx." 0.8; sleep 60   # a jump
t Escape; t gg; t O; t -l "import sys"; t Escape; sleep 3                    # an edit at the top
t ":$((line + 1002))" Enter; t A; typed "ab" 0.8; sleep 70                    # back at the cursor
t Escape; t ":qa!" Enter; sleep 3
tmux kill-session -t "$session" 2>/dev/null || true
grep -h "completion.service" "$work/server.log" | grep -v json_rpc | sed 's/.*service: //'
grep -h "prepare\|KV cache full\|no second prompt" "$work"/run/qwen-lsp/engine-*.log 2>/dev/null \
  | sed 's/.*llama: //' || true
