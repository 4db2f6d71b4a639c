-- The server's base config, found by `vim.lsp.config` on 'runtimepath' (like
-- nvim-lspconfig's lsp/*.lua): `vim.lsp.enable("qwen_lsp")` works even without setup().
-- No `filetypes`: completions are useful in any file buffer.
---@type vim.lsp.Config
return {
  cmd = { "qwen-lsp" },
  root_markers = { ".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml" },
}
