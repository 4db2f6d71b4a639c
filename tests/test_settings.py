"""Settings loading: defaults, camelCase keys, invalid values reported and replaced."""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from typing import Any

import pytest

from lsp_server.settings import (
    SECTION,
    Settings,
    int_range,
    load_settings,
    to_camel,
    to_wire,
)

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def wire_keys(tree: dict[str, Any], prefix: str = SECTION) -> list[str]:
    """Every leaf key of a wire settings tree, dotted: qwenLsp.completion.maxTokens."""
    keys = []
    for name, value in tree.items():
        if isinstance(value, dict) and prefix.count(".") < 1:  # a section, not a map setting
            keys.extend(wire_keys(value, f"{prefix}.{name}"))
        else:
            keys.append(f"{prefix}.{name}")
    return keys


def test_defaults() -> None:
    result = load_settings(None)
    assert result.errors == []
    s = result.settings
    assert s == Settings()
    assert (s.model.path, s.model.n_gpu_layers, s.model.context_size) == ("", -1, 49152)
    assert (s.model.flash_attention, s.model.kv_cache_type) == ("auto", "f16")
    assert (s.model.threads, s.model.batch_size) == (0, 512)
    c = s.completion
    assert (c.enabled, c.prompt_format, c.max_tokens, c.time_budget_ms) == (True, "auto", 128, 2000)
    assert (c.prefix_lines, c.suffix_lines, c.multiline) == (120, 40, "auto")
    x = s.context
    assert (x.enabled, x.budget_tokens, x.max_file_size, x.exclude) == (True, 16384, 1_000_000, [])
    assert (x.definitions, x.recent, x.similar) == (True, True, True)
    e = s.engine
    assert (e.checkpoint_memory_mb, e.slots, e.warmup, e.prefetch) == (2048, 2, True, True)
    assert load_settings({}).settings == Settings()


def test_camel_case_keys() -> None:
    result = load_settings(
        {
            "model": {"path": "~/models/q.gguf", "nGpuLayers": 20, "kvCacheType": "q8_0"},
            "completion": {"maxTokens": 64, "timeBudgetMs": 500, "promptFormat": "fim"},
            "context": {"budgetTokens": 4096, "exclude": ["**/generated/**"]},
            "engine": {"checkpointMemoryMb": 512, "warmup": False},
        }
    )
    assert result.errors == []
    s = result.settings
    assert s.model.path == "~/models/q.gguf"
    assert (s.model.n_gpu_layers, s.model.kv_cache_type) == (20, "q8_0")
    assert (s.completion.max_tokens, s.completion.time_budget_ms) == (64, 500)
    assert s.completion.prompt_format == "fim"
    assert (s.context.budget_tokens, s.context.exclude) == (4096, ["**/generated/**"])
    assert (s.engine.checkpoint_memory_mb, s.engine.warmup) == (512, False)
    assert s.completion.prefix_lines == 120  # untouched keys keep their defaults


def test_wrapped_in_the_section_key() -> None:
    result = load_settings({SECTION: {"completion": {"maxTokens": 32}}})
    assert SECTION == "qwenLsp"
    assert result.errors == []
    assert result.settings.completion.max_tokens == 32


def test_unknown_keys_are_ignored() -> None:
    result = load_settings(
        {
            "telemetry": True,
            "model": {"path": "m.gguf", "futureOption": 3},
            "completion": {"maxTokens": 16, "max_tokenz": 99},
            "newSection": {"a": 1},
        }
    )
    assert result.errors == []
    assert result.settings.model.path == "m.gguf"
    assert result.settings.completion.max_tokens == 16


@pytest.mark.parametrize(
    ("raw", "key", "words"),
    [
        ({"completion": {"maxTokens": "many"}}, "qwenLsp.completion.maxTokens", "integer"),
        ({"completion": {"maxTokens": 0}}, "qwenLsp.completion.maxTokens", "between 1 and 4096"),
        ({"completion": {"maxTokens": 5000}}, "qwenLsp.completion.maxTokens", "between 1 and 4096"),
        ({"completion": {"maxTokens": True}}, "qwenLsp.completion.maxTokens", "integer"),
        ({"completion": {"maxTokens": 12.5}}, "qwenLsp.completion.maxTokens", "integer"),
        ({"model": {"nGpuLayers": -2}}, "qwenLsp.model.nGpuLayers", "at least -1"),
        ({"model": {"contextSize": 100}}, "qwenLsp.model.contextSize", "between 256"),
        ({"completion": {"promptFormat": "xml"}}, "qwenLsp.completion.promptFormat", "'fim'"),
        ({"model": {"kvCacheType": "q4_0"}}, "qwenLsp.model.kvCacheType", "'q8_0'"),
        ({"completion": {"multiline": True}}, "qwenLsp.completion.multiline", "'always'"),
        ({"completion": {"enabled": "yes"}}, "qwenLsp.completion.enabled", "true or false"),
        ({"engine": {"warmup": 1}}, "qwenLsp.engine.warmup", "true or false"),
        ({"model": {"path": 42}}, "qwenLsp.model.path", "string"),
        ({"context": {"exclude": "dist"}}, "qwenLsp.context.exclude", "list"),
        ({"context": {"exclude": ["dist", 3]}}, "qwenLsp.context.exclude[1]", "string"),
        (
            {"engine": {"checkpointMemoryMb": -1}},
            "qwenLsp.engine.checkpointMemoryMb",
            "between 0",
        ),
        ({"engine": {"slots": 0}}, "qwenLsp.engine.slots", "between 1 and 16"),
        ({"engine": {"slots": 17}}, "qwenLsp.engine.slots", "between 1 and 16"),
        ({"completion": "fast"}, "qwenLsp.completion", "object"),
    ],
)
def test_invalid_value_is_reported_by_its_camel_case_key(
    raw: dict[str, Any], key: str, words: str
) -> None:
    result = load_settings(raw)
    assert len(result.errors) == 1
    (message,) = result.errors
    assert message.startswith(key + ":"), message
    assert words in message
    assert result.settings == Settings()  # the default applies


def test_invalid_value_does_not_stop_the_valid_ones() -> None:
    result = load_settings(
        {
            "model": {"path": "m.gguf", "contextSize": "huge"},
            "completion": {"maxTokens": -5, "suffixLines": 10, "multiline": "sometimes"},
            "engine": {"prefetch": False},
        }
    )
    assert len(result.errors) == 3
    s = result.settings
    assert s.model.path == "m.gguf" and s.model.context_size == 49152
    assert s.completion.max_tokens == 128 and s.completion.multiline == "auto"
    assert s.completion.suffix_lines == 10
    assert s.engine.prefetch is False


def test_each_invalid_value_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lsp_server.settings"):
        load_settings({"completion": {"maxTokens": "x", "timeBudgetMs": 1}})
    lines = [r.getMessage() for r in caplog.records if r.name == "lsp_server.settings"]
    assert len(lines) == 2
    assert any("qwenLsp.completion.maxTokens" in line for line in lines)
    assert any("qwenLsp.completion.timeBudgetMs" in line for line in lines)


def test_whole_numbers_as_floats_and_null_values() -> None:
    result = load_settings({"completion": {"maxTokens": 64.0, "prefixLines": None}})
    assert result.errors == []
    assert result.settings.completion.max_tokens == 64
    assert isinstance(result.settings.completion.max_tokens, int)
    assert result.settings.completion.prefix_lines == 120  # null: keep the default


def test_bounds_are_inclusive() -> None:
    raw = {
        "model": {"nGpuLayers": -1, "contextSize": 256, "threads": 1024, "batchSize": 16},
        "completion": {"maxTokens": 4096, "timeBudgetMs": 50, "prefixLines": 1, "suffixLines": 0},
        "context": {"budgetTokens": 0},
        "engine": {"checkpointMemoryMb": 0, "slots": 16},
    }
    assert load_settings(raw).errors == []
    assert load_settings({"engine": {"slots": 1}}).errors == []


def test_every_integer_setting_has_bounds_that_hold_its_default() -> None:
    root = Settings()
    for section in dataclasses.fields(root):
        group = getattr(root, section.name)
        for f in dataclasses.fields(group):
            value = getattr(group, f.name)
            if type(value) is int:
                bounds = int_range(type(group), f.name)  # raises when it has none
                bounds.check(f"{section.name}.{f.name}", value)
    with pytest.raises(LookupError):
        int_range(type(root.model), "path")


def test_base_keeps_earlier_values() -> None:
    base = load_settings(
        {
            "model": {"path": "a.gguf"},
            "completion": {"maxTokens": 64},
            "context": {"exclude": ["x"]},
        }
    ).settings
    before = dataclasses.asdict(base)
    result = load_settings({"completion": {"timeBudgetMs": 900}}, base=base)
    s = result.settings
    assert result.errors == []
    assert s.model.path == "a.gguf" and s.completion.max_tokens == 64
    assert s.completion.time_budget_ms == 900
    assert s.context.exclude == ["x"]
    s.context.exclude.append("y")
    assert dataclasses.asdict(base) == before  # the base is never modified
    assert load_settings(None, base=base).settings == base


def test_invalid_value_with_a_base_keeps_the_earlier_value() -> None:
    base = load_settings({"completion": {"maxTokens": 64}}).settings
    result = load_settings({"completion": {"maxTokens": "lots"}}, base=base)
    assert len(result.errors) == 1
    assert result.settings.completion.max_tokens == 64


def test_to_wire_round_trips() -> None:
    custom = load_settings(
        {
            "model": {"path": "/m.gguf", "flashAttention": "off", "threads": 6},
            "completion": {"multiline": "never", "prefixLines": 300},
            "context": {"exclude": ["vendor/**"], "similar": False},
            "engine": {"checkpointMemoryMb": 4096},
        }
    ).settings
    for settings in (Settings(), custom):
        wire = to_wire(settings)
        assert wire["completion"]["maxTokens"] == settings.completion.max_tokens
        assert "max_tokens" not in wire["completion"]
        again = load_settings(wire)
        assert again.errors == []
        assert again.settings == settings
        assert load_settings({SECTION: wire}).settings == settings


def test_to_camel() -> None:
    assert to_camel("max_tokens") == "maxTokens"
    assert to_camel("checkpoint_memory_mb") == "checkpointMemoryMb"
    assert to_camel("path") == "path"


def test_a_top_level_non_object_is_reported_as_the_section() -> None:
    result = load_settings("fast")
    assert result.settings == Settings()
    assert result.errors == ["qwenLsp: expected an object, got 'fast'"]


def test_every_key_is_documented() -> None:
    """docs/configuration.md has a heading for each key, with its default."""
    text = DOCS.read_text(encoding="utf-8")
    keys = wire_keys(to_wire(Settings()))
    assert len(keys) > 20
    missing = [key for key in keys if f"### `{key}`" not in text]
    assert missing == []


def test_an_unreadable_exclude_pattern_is_reported_and_the_rest_kept():
    result = load_settings({"context": {"exclude": ["fixtures/", "[z-a]", "*.pb.go"]}})
    assert result.settings.context.exclude == ["fixtures/", "*.pb.go"]
    assert result.errors == ["qwenLsp.context.exclude[1]: '[z-a]' is not a valid pattern"]


def test_languages_merge_over_the_defaults_like_vs_code_objects() -> None:
    c = load_settings(None).settings.completion
    assert c.languages["*"] and not c.languages["markdown"] and not c.languages["plaintext"]
    assert c.enabled_for("ruby") and c.enabled_for("python") and c.enabled_for("")
    assert not c.enabled_for("markdown") and not c.enabled_for("gitcommit")

    result = load_settings({"completion": {"languages": {"markdown": True, "yaml": False}}})
    assert result.errors == []
    c = result.settings.completion
    assert c.enabled_for("markdown") and not c.enabled_for("yaml")
    assert not c.enabled_for("plaintext")  # a default the user did not name stays

    only = load_settings({"completion": {"languages": {"*": False, "python": True}}}).settings
    assert only.completion.enabled_for("python") and not only.completion.enabled_for("go")

    off = load_settings({"completion": {"enabled": False}}).settings.completion
    assert not off.enabled_for("python")  # the master switch wins


def test_a_bad_language_entry_is_reported_and_the_rest_kept() -> None:
    result = load_settings({"completion": {"languages": {"git-commit": "yes", "go": False}}})
    assert result.errors == [
        "qwenLsp.completion.languages['git-commit']: expected true or false, got 'yes'"
    ]
    c = result.settings.completion
    assert not c.enabled_for("go") and not c.enabled_for("git-commit")

    wrong = load_settings({"completion": {"languages": ["python"]}})
    assert wrong.errors == ["qwenLsp.completion.languages: expected an object, got ['python']"]
    assert wrong.settings.completion.languages == Settings().completion.languages

    # An empty Lua table arrives as a list: the defaults.
    assert load_settings({"completion": {"languages": []}}).errors == []


def test_a_reload_starts_the_languages_from_the_defaults() -> None:
    """Editors send the whole section again: a language the user no longer names goes
    back to its default instead of keeping the earlier value."""
    first = load_settings({"completion": {"languages": {"markdown": True}}}).settings
    again = load_settings({"completion": {"languages": {"ruby": False}}}, base=first).settings
    assert not again.completion.enabled_for("markdown") and not again.completion.enabled_for("ruby")
    kept = load_settings({"completion": {"maxTokens": 9}}, base=first).settings
    assert kept.completion.enabled_for("markdown")  # not sent: the earlier value stays
