-- :QwenLsp and the <Plug> mappings; the module loads on first use.
if vim.g.loaded_qwen_lsp then
  return
end
vim.g.loaded_qwen_lsp = true

local subcommands = { "toggle", "enable", "disable", "stats", "status", "restart", "code_action" }

vim.api.nvim_create_user_command("QwenLsp", function(args)
  local sub = args.fargs[1]
  if not vim.list_contains(subcommands, sub) then
    local message = "QwenLsp: unknown subcommand %q (%s)"
    vim.notify(message:format(sub, table.concat(subcommands, ", ")), vim.log.levels.ERROR)
    return
  end
  require("qwen_lsp")[sub]()
end, {
  nargs = 1,
  desc = "qwen-lsp: " .. table.concat(subcommands, "|"),
  complete = function(lead)
    return vim.tbl_filter(function(s)
      return vim.startswith(s, lead)
    end, subcommands)
  end,
})

for _, action in ipairs({ "accept", "accept_word", "accept_line", "dismiss" }) do
  local lhs = ("<Plug>(qwen-lsp-%s)"):format((action:gsub("_", "-")))
  vim.keymap.set("i", lhs, function()
    require("qwen_lsp")[action]()
  end, { desc = "qwen-lsp: " .. action:gsub("_", " ") })
end

-- Normal and visual mode: the code actions at the cursor or the selection.
vim.keymap.set({ "n", "x" }, "<Plug>(qwen-lsp-code-action)", function()
  require("qwen_lsp").code_action()
end, { desc = "qwen-lsp: code actions" })
