"""The one place where our plain results become lsprotocol types (and positions change units)."""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types

from lsp_server.actions.diagnostics import SyntaxProblem
from lsp_server.actions.plan import ActionPlan, Diagnostic
from lsp_server.completion.postprocess import Suggestion

# The `source` of our own diagnostics (syntax errors), as editors show it.
DIAGNOSTIC_SOURCE = "qwen-lsp"
# The command of an action for clients that cannot resolve an action's edit lazily:
# executing it runs the model and applies the edit with `workspace/applyEdit`.
APPLY_ACTION_COMMAND = "qwenLsp.applyCodeAction"


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
    suggestion: Suggestion | None, line_text: str, encoding: str, ranges: bool = True
) -> types.InlineCompletionList:
    """The suggestion as one inline item. With `ranges` it carries its range: the cursor,
    widened over the closing brackets after it that the text reproduces (VS Code needs a
    range: without one it replaces up to the end of the line). Without (`ranges` False,
    for Neovim, which draws any ranged item *over* the text after the cursor) it is a
    plain insertion at the cursor, less the closers it would have replaced, when code
    follows the cursor (at the end of a line an overlay is drawn as an insertion, and
    Neovim needs the range to draw an answer for a buffer no window shows)."""
    if suggestion is None:
        return types.InlineCompletionList(items=[])
    if not ranges and line_text[suggestion.character :].strip():
        return types.InlineCompletionList(items=[_insertion(suggestion, line_text)])
    item = types.InlineCompletionItem(
        insert_text=suggestion.text, range=suggestion_range(suggestion, line_text, encoding)
    )
    return types.InlineCompletionList(items=[item])


def _insertion(suggestion: Suggestion, line_text: str) -> types.InlineCompletionItem:
    """The same edit as an insertion at the cursor: the closers the suggestion replaces
    (which it ends with) stay in the line, and the text stops before them."""
    text = suggestion.text
    replaced = line_text[suggestion.character : suggestion.end_character]
    for tail in (replaced, replaced.strip()):
        if tail and text.endswith(tail):
            text = text[: -len(tail)]
            break
    return types.InlineCompletionItem(insert_text=text)


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


def edited_lines(change: types.TextDocumentContentChangeEvent) -> tuple[int, int, int] | None:
    """The lines an edit touched, as (first line, last line after it, lines added): None
    for a change of the whole text (nothing local to note)."""
    if not isinstance(change, types.TextDocumentContentChangePartial):
        return None
    start, added = change.range.start.line, change.text.count("\n")
    return start, start + added, added - (change.range.end.line - start)


def selected_lines(selection: types.Range) -> tuple[int, int]:
    """The first and last line of a selection: whole lines selected end at column 0 of
    the line after them, which is not part of it."""
    start, end = selection.start, selection.end
    return start.line, end.line - 1 if end.character == 0 and end.line > start.line else end.line


def diagnostic_of(diagnostic: types.Diagnostic, lines: Sequence[str], encoding: str) -> Diagnostic:
    """The client's diagnostic in our terms (columns in code points of ``lines``)."""
    start, end = diagnostic.range.start, diagnostic.range.end

    def column(line: int, character: int) -> int:
        if 0 <= line < len(lines):
            return column_to_codepoints(lines[line].removesuffix("\r"), character, encoding)
        return character

    return Diagnostic(
        diagnostic.message,
        start.line,
        end.line,
        diagnostic.source or "",
        column(start.line, start.character),
        column(end.line, end.character),
    )


def syntax_diagnostics(
    problems: list[SyntaxProblem], lines: Sequence[str], encoding: str
) -> list[types.Diagnostic]:
    """Our syntax errors as LSP diagnostics (columns in the negotiated encoding)."""

    def position(line: int, column: int) -> types.Position:
        text = lines[line].removesuffix("\r") if 0 <= line < len(lines) else ""
        return types.Position(line, codepoints_to_column(text, column, encoding))

    return [
        types.Diagnostic(
            range=types.Range(position(p.line, p.column), position(p.end_line, p.end_column)),
            message=p.message,
            severity=types.DiagnosticSeverity.Error,
            source=DIAGNOSTIC_SOURCE,
            code="syntax",
        )
        for p in problems
    ]


def code_action_of(
    plan: ActionPlan,
    uri: str,
    diagnostics: list[types.Diagnostic],
    lazy_edit: bool,
    ai_tag: bool = False,
) -> types.CodeAction:
    """The action as offered: its edit comes later, through `codeAction/resolve` when the
    client supports it (`lazy_edit`), else through the command. ``ai_tag``: mark it as
    written by a model (LSP 3.18 `CodeActionTag.LLMGenerated`; VS Code shows it so)."""
    data = {"uri": uri, "plan": plan.to_data()}
    action = types.CodeAction(
        title=plan.title,
        kind=plan.kind,
        diagnostics=[diagnostics[plan.diagnostic]]
        if 0 <= plan.diagnostic < len(diagnostics)
        else None,
        tags=[types.CodeActionTag.LlmGenerated] if ai_tag else None,
    )
    if lazy_edit:
        action.data = data
    else:
        action.command = types.Command(
            title=plan.title, command=APPLY_ACTION_COMMAND, arguments=[data]
        )
    return action


def action_data(data: object) -> tuple[str, ActionPlan]:
    """The document and plan an action carries; ValueError when it is not ours."""
    data = _plain(data)  # pygls hands unknown objects over as namedtuples
    if not isinstance(data, dict) or not isinstance(data.get("uri"), str):
        raise ValueError("not a qwen-lsp code action")
    return data["uri"], ActionPlan.from_data(data.get("plan"))


def _plain(value: object) -> object:
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def lines_edit(
    uri: str,
    version: int | None,
    lines: Sequence[str],
    start_line: int,
    end_line: int,
    new_text: str,
    count: int,
    encoding: str,
    *,
    versioned: bool = True,
) -> types.WorkspaceEdit:
    """Replace whole lines ``[start_line, end_line)`` of the document with ``new_text``
    (``count`` lines; none: the lines are deleted; an empty range: inserted before
    ``start_line``). ``versioned``: as a versioned document change, which the client
    refuses to apply if the document changed meanwhile (when it supports
    `documentChanges`)."""
    eol = "\r\n" if lines and lines[0].endswith("\r") else "\n"
    last = len(lines) - 1  # (the text after the final line break, often empty)
    if end_line <= last:
        start = types.Position(start_line, 0)
        end = types.Position(end_line, 0)
        text = new_text + eol if count else ""
    else:  # through the last line, which has no line break after it
        tail = lines[last].removesuffix("\r")
        end = types.Position(last, codepoints_to_column(tail, len(tail), encoding))
        if count or start_line == 0:
            start, text = types.Position(start_line, 0), new_text
        else:  # deleting the last lines: the line break before them goes too
            above = lines[start_line - 1].removesuffix("\r")
            start = types.Position(
                start_line - 1, codepoints_to_column(above, len(above), encoding)
            )
            text = ""
    edit = types.TextEdit(range=types.Range(start=start, end=end), new_text=text)
    if not versioned:
        return types.WorkspaceEdit(changes={uri: [edit]})
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=uri, version=version
                ),
                edits=[edit],
            )
        ]
    )
