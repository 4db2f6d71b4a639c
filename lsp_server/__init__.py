"""qwen-lsp: a local AI completion language server (Qwen3.6 + llama.cpp, in-process)."""

__version__ = "0.1.0"
