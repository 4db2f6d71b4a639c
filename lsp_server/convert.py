"""The one place where our plain results become lsprotocol types (and positions change units)."""

from __future__ import annotations

from lsprotocol import types

from lsp_server.completion.postprocess import Suggestion


def column_to_codepoints(line: str, character: int, encoding: str) -> int:
    """An LSP column in the negotiated encoding → a code-point index, clamped to the line."""
    if character <= 0:
        return 0
    if encoding == types.PositionEncodingKind.Utf32:
        return min(character, len(line))
    if line.isascii():
        return min(character, len(line))
    width = 2 if encoding == types.PositionEncodingKind.Utf16 else None
    units = 0
    for index, ch in enumerate(line):
        if units >= character:
            return index
        if width is None:
            units += len(ch.encode("utf-8", "surrogatepass"))
        else:
            units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def codepoints_to_column(line: str, index: int, encoding: str) -> int:
    head = line[:index]
    if encoding == types.PositionEncodingKind.Utf32 or head.isascii():
        return len(head)
    if encoding == types.PositionEncodingKind.Utf16:
        return sum(2 if ord(ch) > 0xFFFF else 1 for ch in head)
    return len(head.encode("utf-8", "surrogatepass"))


def suggestion_range(suggestion: Suggestion, line_text: str, encoding: str) -> types.Range:
    return types.Range(
        start=types.Position(
            suggestion.line, codepoints_to_column(line_text, suggestion.character, encoding)
        ),
        end=types.Position(
            suggestion.line, codepoints_to_column(line_text, suggestion.end_character, encoding)
        ),
    )


def inline_items(
    suggestion: Suggestion | None, line_text: str, encoding: str
) -> types.InlineCompletionList:
    if suggestion is None:
        return types.InlineCompletionList(items=[])
    item = types.InlineCompletionItem(
        insert_text=suggestion.text, range=suggestion_range(suggestion, line_text, encoding)
    )
    return types.InlineCompletionList(items=[item])


def completion_items(
    suggestion: Suggestion | None, line_text: str, encoding: str
) -> types.CompletionList:
    """The same suggestion as one plain completion item, for clients without inline completion."""
    if suggestion is None:
        return types.CompletionList(is_incomplete=True, items=[])
    first = suggestion.text.split("\n", 1)[0].strip() or suggestion.text.strip()
    label = first if len(first) <= 60 else first[:57] + "..."
    item = types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Snippet,
        detail="qwen-lsp",
        documentation=types.MarkupContent(
            kind=types.MarkupKind.Markdown, value=f"```\n{suggestion.text}\n```"
        ),
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(
            range=suggestion_range(suggestion, line_text, encoding), new_text=suggestion.text
        ),
        # The range starts at the cursor, so clients filter on an empty word: always shown.
        filter_text=suggestion.text,
        sort_text="0",
        preselect=True,
    )
    return types.CompletionList(is_incomplete=True, items=[item])
