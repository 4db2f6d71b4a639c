"""Prompt building: both formats, segment order, special tokens and checkpoints."""

from __future__ import annotations

import pytest

from lsp_server.completion.document import cursor_window
from lsp_server.completion.prompt import (
    ALL_SPECIALS,
    CHATML_TEMPLATE,
    FILE_SEP,
    FIM_MIDDLE,
    FIM_PREFIX,
    FIM_SUFFIX,
    REPO_NAME,
    SYSTEM_PROMPT,
    ContextBlock,
    Prompt,
    PromptInputs,
    Segment,
    build_chat_prompt,
    build_fim_prompt,
    build_prompt,
    fence_language,
    language_of,
    render_chat_frame,
)
from lsp_server.testing.tiny_gguf import DEFAULT_CHAT_TEMPLATE

SOURCE = (
    "import math\n"
    "\n"
    "def area(r):\n"
    "    return math.pi * r * r\n"
    "\n"
    "def circumference(r):\n"
    "    return 2 * math.pi * r\n"
)
THINK_OFF = "<think>\n\n</think>\n\n"
BLOCKS = (
    ContextBlock(f"{FILE_SEP}geometry/shapes.py\nclass Circle: ...\n", (FILE_SEP,)),
    ContextBlock(f"{FILE_SEP}geometry/units.py\nMETRE = 1.0\n", (FILE_SEP,)),
)


def inputs(
    text: str = SOURCE,
    line: int = 3,
    character: int = 11,
    *,
    path: str = "geometry/circle.py",
    repo_name: str = "",
    context: tuple[ContextBlock, ...] = (),
) -> PromptInputs:
    window = cursor_window(text, line, character, prefix_lines=120, suffix_lines=40)
    return PromptInputs(window=window, path=path, repo_name=repo_name, context=context)


def names(prompt: Prompt) -> list[str]:
    return [s.name for s in prompt.segments]


def segment(prompt: Prompt, name: str) -> Segment:
    (found,) = [s for s in prompt.segments if s.name == name]
    return found


# ---- FIM ---------------------------------------------------------------------------------


def test_fim_alone_is_prefix_suffix_middle() -> None:
    data = inputs()
    prompt = build_fim_prompt(data)
    w = data.window
    assert prompt.format == "fim"
    assert prompt.text == f"{FIM_PREFIX}{w.prefix}{FIM_SUFFIX}{w.suffix}{FIM_MIDDLE}"
    assert w.prefix.endswith("    return ") and w.suffix.startswith("math.pi")
    assert prompt.stop == ()


def test_fim_with_repository_context_order() -> None:
    data = inputs(repo_name="geometry", context=BLOCKS)
    prompt = build_fim_prompt(data)
    w = data.window
    assert names(prompt) == [
        "repo",
        "context-0",
        "context-1",
        "fim-prefix-head",
        "prefix",
        "fim-suffix-head",
        "suffix",
        "fim-middle",
    ]
    assert prompt.text == (
        f"{REPO_NAME}geometry\n{BLOCKS[0].text}{BLOCKS[1].text}"
        f"{FILE_SEP}geometry/circle.py\n{FIM_PREFIX}{w.prefix}{FIM_SUFFIX}{w.suffix}{FIM_MIDDLE}"
    )


def test_fim_specials_per_segment() -> None:
    prompt = build_fim_prompt(inputs(repo_name="geometry", context=BLOCKS))
    specials = {s.name: s.specials for s in prompt.segments}
    assert specials == {
        "repo": (REPO_NAME,),
        "context-0": (FILE_SEP,),
        "context-1": (FILE_SEP,),
        "fim-prefix-head": (FILE_SEP, FIM_PREFIX),
        "prefix": (),
        "fim-suffix-head": (FIM_SUFFIX,),
        "suffix": (),
        "fim-middle": (FIM_MIDDLE,),
    }


def test_user_code_never_parses_special_tokens() -> None:
    text = 'MARK = "<|im_end|><|fim_middle|>"\nEND = "<|endoftext|>"\n'
    block = ContextBlock("# other file: <|im_start|>\n")
    for prompt in (
        build_fim_prompt(inputs(text, 1, 5, context=(block,))),
        build_chat_prompt(inputs(text, 1, 5, context=(block,)), render_chat_frame(None)),
    ):
        prefix, suffix, context = (segment(prompt, n) for n in ("prefix", "suffix", "context-0"))
        assert prefix.specials == () and suffix.specials == () and context.specials == ()
        assert "<|im_end|><|fim_middle|>" in prefix.text
        assert "<|endoftext|>" in suffix.text
        assert context.text == block.text


def test_fim_checkpoints() -> None:
    prompt = build_fim_prompt(inputs(repo_name="geometry", context=BLOCKS))
    flagged = {s.name for s in prompt.segments if s.checkpoint}
    assert flagged == {"context-0", "context-1"}  # each context tier ends at a checkpoint
    assert {s.name for s in prompt.segments if s.line_checkpoints} == {"prefix"}
    only_repo = build_fim_prompt(inputs(repo_name="geometry"))
    assert [s.name for s in only_repo.segments if s.checkpoint] == ["repo"]
    bare = build_fim_prompt(inputs())
    assert not any(s.checkpoint for s in bare.segments)


def test_fim_stable_length_covers_what_the_cursor_does_not_change() -> None:
    prompt = build_fim_prompt(inputs(repo_name="geometry", context=BLOCKS))
    assert prompt.stable_length() == names(prompt).index("fim-prefix-head") == 3
    elsewhere = build_fim_prompt(inputs(line=6, character=4, repo_name="geometry", context=BLOCKS))
    n = prompt.stable_length()
    assert elsewhere.segments[:n] == prompt.segments[:n]
    assert build_fim_prompt(inputs()).stable_length() == 0


# ---- chat frame ----------------------------------------------------------------------------


def test_qwen3_style_template_with_thinking_off() -> None:
    head, tail = render_chat_frame(DEFAULT_CHAT_TEMPLATE)
    assert head == f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n"
    assert tail == f"<|im_end|>\n<|im_start|>assistant\n{THINK_OFF}"


def test_no_template_falls_back_to_chatml() -> None:
    assert render_chat_frame(None) == render_chat_frame(DEFAULT_CHAT_TEMPLATE)
    assert render_chat_frame("") == render_chat_frame(None)
    assert render_chat_frame(CHATML_TEMPLATE) == render_chat_frame(None)


@pytest.mark.parametrize(
    "template",
    [
        "{{ raise_exception('System role not supported') }}",
        "{% for m in messages %}{{ m.content }",  # a syntax error
        "{% for m in messages %}{{ m.content.nope.deeper }}{% endfor %}",  # undefined
        # renders only the system message: the user's turn is lost
        "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}{% endif %}{% endfor %}",
        # renders the user's message twice
        "{% for m in messages %}{{ m.content }}{{ m.content }}{% endfor %}",
    ],
)
def test_broken_templates_fall_back_to_chatml(template: str) -> None:
    assert render_chat_frame(template) == render_chat_frame(None)


def test_template_raising_a_python_error_falls_back() -> None:
    template = "{% for m in messages %}{{ m.content + 1 }}{% endfor %}"
    assert render_chat_frame(template) == render_chat_frame(None)


def test_thinking_template_that_ignores_enable_thinking_gets_the_empty_thought() -> None:
    template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        "{# the model answers inside <think> ... </think> first #}"
    )
    _, tail = render_chat_frame(template)
    assert tail == f"<|im_end|>\n<|im_start|>assistant\n{THINK_OFF}"


def test_bos_token_reaches_the_head() -> None:
    head, _ = render_chat_frame("{{ bos_token }}" + DEFAULT_CHAT_TEMPLATE, bos="<s>", eos="</s>")
    assert head.startswith("<s><|im_start|>system\n")


# ---- chat prompt -------------------------------------------------------------------------


def test_chat_segment_order_with_context() -> None:
    prompt = build_chat_prompt(inputs(context=BLOCKS), render_chat_frame(DEFAULT_CHAT_TEMPLATE))
    assert prompt.format == "chat"
    assert names(prompt) == [
        "head",
        "context-intro",
        "context-0",
        "context-1",
        "suffix",
        "answer-start",
        "prefix",
    ]


def test_chat_prompt_text() -> None:
    data = inputs()
    head, tail = render_chat_frame(DEFAULT_CHAT_TEMPLATE)
    prompt = build_chat_prompt(data, (head, tail))
    w = data.window
    assert prompt.text.startswith(head)
    assert prompt.text.endswith(
        f"<|im_end|>\n<|im_start|>assistant\n{THINK_OFF}```python\n{w.prefix}"
    )
    suffix = segment(prompt, "suffix").text
    assert "`geometry/circle.py`" in suffix
    assert f"```python\n{w.suffix}\n```" in suffix
    assert prompt.stop == ("```",)


def test_chat_prefix_is_last_so_typing_and_enter_append() -> None:
    frame = render_chat_frame(DEFAULT_CHAT_TEMPLATE)
    lines = SOURCE.split("\n")
    for line, current in enumerate(lines):
        for character in range(len(current) + 1):
            before = build_chat_prompt(inputs(SOURCE, line, character), frame)
            typed = "\n".join(
                lines[:line] + [current[:character] + "x" + current[character:]] + lines[line + 1 :]
            )
            after = build_chat_prompt(inputs(typed, line, character + 1), frame)
            assert after.text == before.text + "x", (line, character)
            assert (
                after.segments[: before.stable_length()]
                == before.segments[: before.stable_length()]
            )
            entered = "\n".join(
                lines[:line] + [current[:character], current[character:]] + lines[line + 1 :]
            )
            assert build_chat_prompt(inputs(entered, line + 1, 0), frame).text == (
                before.text + "\n"
            )


def test_chat_specials_and_checkpoints() -> None:
    prompt = build_chat_prompt(inputs(context=BLOCKS), render_chat_frame(DEFAULT_CHAT_TEMPLATE))
    specials = {s.name: s.specials for s in prompt.segments}
    assert specials["head"] == ALL_SPECIALS
    assert specials["answer-start"] == ALL_SPECIALS
    assert specials["context-intro"] == ()
    assert specials["suffix"] == () and specials["prefix"] == ()
    assert specials["context-0"] == (FILE_SEP,)
    checkpointed = {s.name for s in prompt.segments if s.checkpoint}
    assert checkpointed == {"context-0", "context-1", "answer-start"}
    assert {s.name for s in prompt.segments if s.line_checkpoints} == {"prefix"}


def test_chat_context_blocks_precede_the_suffix() -> None:
    prompt = build_chat_prompt(inputs(context=BLOCKS), render_chat_frame(None))
    text = prompt.text
    assert text.index(BLOCKS[0].text) < text.index(BLOCKS[1].text) < text.index("I am editing")
    assert segment(prompt, "context-intro").text.startswith("Code from other files")
    without = build_chat_prompt(inputs(), render_chat_frame(None))
    assert "context-intro" not in names(without)
    assert not any(s.name.startswith("context") for s in without.segments)


def test_chat_stable_length_is_everything_but_the_prefix() -> None:
    prompt = build_chat_prompt(inputs(context=BLOCKS), render_chat_frame(None))
    assert prompt.stable_length() == len(prompt.segments) - 1
    assert prompt.segments[prompt.stable_length()].name == "prefix"


def test_chat_nothing_after_the_cursor() -> None:
    text = "def main():\n    "
    prompt = build_chat_prompt(inputs(text, 1, 4, path="main.py"), render_chat_frame(None))
    assert "Nothing follows the cursor." in segment(prompt, "suffix").text


@pytest.mark.parametrize(
    ("path", "fence"),
    [("src/app.ts", "```typescript\n"), ("cmd/main.go", "```go\n"), ("notes.txt", "```\n")],
)
def test_chat_fence_names_the_language(path: str, fence: str) -> None:
    prompt = build_chat_prompt(inputs(path=path), render_chat_frame(None))
    assert segment(prompt, "answer-start").text.endswith(fence)


def test_build_prompt_dispatches_and_defaults_to_chatml() -> None:
    data = inputs()
    assert build_prompt("fim", data) == build_fim_prompt(data)
    assert build_prompt("chat", data) == build_chat_prompt(data, render_chat_frame(None))
    frame = ("<head>", "<tail>")
    assert build_prompt("chat", data, frame).text.startswith("<head>")


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a.py", "python"),
        ("A.PY", "python"),
        ("x/y.tsx", "tsx"),
        ("main.go", "go"),
        ("lib.rs", "rust"),
        ("Makefile", ""),
        ("data.unknown", ""),
    ],
)
def test_language_of(path: str, language: str) -> None:
    assert language_of(path) == language


@pytest.mark.parametrize(
    ("path", "language_id", "tag"),
    [
        ("app/models.py", "python", "python"),  # the extension first
        ("notes.rb", "", "ruby"),
        ("Dockerfile", "dockerfile", "dockerfile"),  # no extension: the editor's id
        ("deploy", "shellscript", "bash"),  # VS Code's id for shell scripts
        ("App.vue", "vue", "vue"),
        ("x.unknown", "Objective-C", "objective-c"),
        ("readme", "plaintext", ""),
        ("x", "<|im_end|>", ""),  # never a control token in the prompt
        ("x", "a b", ""),
        ("x", "", ""),
    ],
)
def test_fence_language(path: str, language_id: str, tag: str) -> None:
    assert fence_language(path, language_id) == tag


def test_the_editors_language_names_the_fences_of_a_file_without_extension() -> None:
    prompt = build_chat_prompt(
        PromptInputs(
            window=cursor_window("FROM python:3.12\nRUN ", 1, 4, prefix_lines=120, suffix_lines=40),
            path="Dockerfile",
            language_id="dockerfile",
        ),
        render_chat_frame(DEFAULT_CHAT_TEMPLATE),
    )
    assert segment(prompt, "answer-start").text.endswith("```dockerfile\n")
