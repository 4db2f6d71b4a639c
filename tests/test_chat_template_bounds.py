"""A GGUF's chat template is code from the model file: the sandbox keeps it from doing
anything but work, and the work is bounded in time and size. Over a bound the prompt is
ChatML, at once, instead of a model "loading" forever or gigabytes taken."""

from __future__ import annotations

import resource
import time

import pytest

from lsp_server.completion import prompt
from lsp_server.completion.prompt import render_chat_frame

COSTLY = {
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
    "{% endfor %}{{ messages }}",
    "a huge product": "{% set a = 'x' * 1500000000 %}{{ a }}",
    "doubling by ~": "{% set ns = namespace(s='xx') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "doubling by +": "{% set ns = namespace(s='xx') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
    "a filter's argument": "{{ 'x'|center(1500000000) }}",
    "a huge power": "{{ 10 ** 100000000 }}",
}


@pytest.mark.parametrize("name", list(COSTLY))
def test_a_costly_template_falls_back_to_chatml_within_the_bounds(name: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    frame = render_chat_frame(COSTLY[name])
    seconds = time.monotonic() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert frame == render_chat_frame(None)
    assert seconds < prompt.TEMPLATE_TIME_S + 1.5, seconds
    assert grown_mb < 200, grown_mb


def test_an_ordinary_template_is_still_rendered() -> None:
    template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    head, tail = render_chat_frame(template)
    assert head.startswith("<|im_start|>system\n") and tail.endswith("<|im_start|>assistant\n")
