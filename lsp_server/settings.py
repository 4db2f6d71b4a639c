"""The one settings tree.

The same tree arrives as `initializationOptions`, through `workspace/configuration`
(section ``qwenLsp``) and from the command line. Keys are camelCase on the wire and
snake_case here. Unknown keys are ignored; an invalid value is reported (one log line
here, one message shown by the caller) and replaced by its default, so a typo never
takes the server down. An integer's bounds sit next to its field (`Range`). Every key
is documented in docs/configuration.md.

Why not cattrs (which jedi-language-server uses): its structuring is lenient where this
must be strict (it turns 5 into "5" and "false" into True unless every primitive hook is
replaced), and on an invalid value it fails the whole class, where here only that value
falls back to its default while the others apply. Both would need hooks and a walk of
our own, which is all this module is.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from context.types import PromptFormat
from lsp_server.redact import remember

log = logging.getLogger(__name__)

SECTION = "qwenLsp"

# The setting: a prompt format, or "auto" (chosen from the model, completion/service.py).
PromptFormatSetting = Literal["auto", PromptFormat]
Multiline = Literal["auto", "always", "never"]
KvCacheType = Literal["f16", "q8_0"]
FlashAttention = Literal["auto", "on", "off"]
Backend = Literal["local", "openai"]

# Where completions are off unless the user turns them on (Copilot's defaults): prose and
# commit messages, under VS Code's language ids and Neovim's filetypes. "*" is every
# language not named. A user's map is merged over this one.
DEFAULT_LANGUAGES: dict[str, bool] = {
    "*": True,
    "plaintext": False,
    "text": False,
    "markdown": False,
    "scminput": False,
    "git-commit": False,
    "gitcommit": False,
    "git-rebase": False,
    "gitrebase": False,
}


@dataclass(frozen=True, slots=True)
class Range:
    """The inclusive bounds of an integer setting, next to its field:
    ``max_tokens: Annotated[int, Range(1, 4096)] = 128`` (no maximum when `high` is None).
    A value outside them is reported and the default applies."""

    low: int
    high: int | None = None

    def check(self, key: str, value: float) -> None:
        """Raise ValueError, with a message for the user, when `value` is outside."""
        if self.high is None and value < self.low:
            raise ValueError(f"{key}: {value!r} must be at least {self.low}")
        if self.high is not None and not self.low <= value <= self.high:
            raise ValueError(f"{key}: {value!r} must be between {self.low} and {self.high}")


def int_range(group: type, name: str) -> Range:
    """The bounds of the integer setting `name` of a settings group (a class above)."""
    for extra in get_args(get_type_hints(group, include_extras=True)[name])[1:]:
        if isinstance(extra, Range):
            return extra
    raise LookupError(f"{group.__name__}.{name} has no Range")


@dataclass(kw_only=True)
class ModelSettings:
    backend: Backend = "local"  # local: in-process llama.cpp; openai: a serving engine
    path: str = ""
    n_gpu_layers: Annotated[int, Range(-1)] = -1
    context_size: Annotated[int, Range(256, 1 << 20)] = 49152
    flash_attention: FlashAttention = "auto"
    kv_cache_type: KvCacheType = "f16"
    threads: Annotated[int, Range(0, 1024)] = 0
    batch_size: Annotated[int, Range(16, 65536)] = 512
    # backend "openai": the serving engine's API base (…/v1), the model id it serves
    # ("" = the first it lists) and its key ("" = $QWEN_LSP_API_KEY, if set).
    url: str = ""
    name: str = ""
    api_key: str = ""
    # Plain http:// to a host other than this machine sends your code and the key in
    # clear: refused unless this is true.
    allow_insecure_http: bool = False


@dataclass(kw_only=True)
class CompletionSettings:
    enabled: bool = True
    prompt_format: PromptFormatSetting = "auto"
    max_tokens: Annotated[int, Range(1, 4096)] = 128
    time_budget_ms: Annotated[int, Range(50, 600_000)] = 2000
    prefix_lines: Annotated[int, Range(1, 100_000)] = 120
    suffix_lines: Annotated[int, Range(0, 100_000)] = 40
    multiline: Multiline = "auto"
    # language id (VS Code) or filetype (Neovim) -> completions on; "*" for the others
    languages: dict[str, bool] = field(default_factory=lambda: dict(DEFAULT_LANGUAGES))

    def enabled_for(self, language_id: str) -> bool:
        """Whether documents of ``language_id`` get completions ("" = not known: "*")."""
        if not self.enabled:
            return False
        return self.languages.get(language_id, self.languages.get("*", True))


@dataclass(kw_only=True)
class ContextSettings:
    enabled: bool = True
    budget_tokens: Annotated[int, Range(0, 1 << 20)] = 16384
    max_file_size: Annotated[int, Range(1, 1 << 31)] = 1_000_000
    exclude: list[str] = field(default_factory=list)
    # Regular expressions of more secrets to keep out of context blocks (context/secrets.py).
    redact_patterns: list[str] = field(default_factory=list)
    definitions: bool = True
    recent: bool = True
    similar: bool = True


@dataclass(kw_only=True)
class EngineSettings:
    checkpoint_memory_mb: Annotated[int, Range(0, 1 << 20)] = 2048
    slots: Annotated[int, Range(1, 16)] = 2
    warmup: bool = True
    prefetch: bool = True
    # One engine process for every editor of the user (false: one per server); both
    # keep llama.cpp out of the server's process.
    shared: bool = True
    # The engine's life after the last editor left.
    idle_exit_seconds: Annotated[int, Range(0, 7 * 86400)] = 300


@dataclass(kw_only=True)
class CodeActionSettings:
    enabled: bool = True
    max_tokens: Annotated[int, Range(16, 16384)] = 1024
    time_budget_ms: Annotated[int, Range(1000, 3_600_000)] = 60_000


@dataclass(kw_only=True)
class ProtocolSettings:
    # A message longer than this is skipped (a request answered with an error): a bound
    # on what one message can make the server hold in memory.
    max_message_mb: Annotated[int, Range(1, 1 << 16)] = 256


@dataclass(kw_only=True)
class DiagnosticsSettings:
    enabled: bool = True


@dataclass(kw_only=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    code_actions: CodeActionSettings = field(default_factory=CodeActionSettings)
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    diagnostics: DiagnosticsSettings = field(default_factory=DiagnosticsSettings)


def to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass
class LoadResult:
    settings: Settings
    errors: list[str]


# Settings whose values are never shown (lsp_server.redact hides them everywhere).
SECRET_KEYS = frozenset({"model.api_key"})


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", bool: "boolean", str: "string"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _convert(value: Any, typ: Any, key: str) -> Any:
    """Return `value` as `typ` or raise ValueError with a message for the user."""
    if key in SECRET_KEYS:
        remember(value)  # never in a log line or a message, valid or not
        kind = _kind(value)
        shown = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    else:
        shown = repr(value)
    bounds: Range | None = None
    if get_origin(typ) is Annotated:
        typ, *extras = get_args(typ)
        bounds = next((e for e in extras if isinstance(e, Range)), None)
    origin = get_origin(typ)
    if origin is Literal:
        choices = get_args(typ)
        if value not in choices:
            raise ValueError(f"{key}: {shown} is not one of {', '.join(map(repr, choices))}")
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false, got {shown}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ValueError(f"{key}: expected an integer, got {shown}")
        if bounds is not None:
            bounds.check(key, value)
        return int(value)
    if typ is str:
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string, got {shown}")
        return value
    if origin is list:
        (item,) = get_args(typ)
        if not isinstance(value, list):
            raise ValueError(f"{key}: expected a list, got {shown}")
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"unsupported settings type {typ!r}")


def _load_into(obj: Any, raw: Any, prefix: str, errors: list[str]) -> None:
    if not isinstance(raw, dict):
        errors.append(f"{prefix or SECTION}: expected an object, got {raw!r}")
        return
    hints = get_type_hints(type(obj), include_extras=True)
    by_wire = {to_camel(f.name): f.name for f in dataclasses.fields(obj)}
    for wire_key, value in raw.items():
        name = by_wire.get(wire_key) or (wire_key if wire_key in hints else None)
        if name is None:
            continue  # unknown keys are ignored, so older servers accept newer configs
        key = f"{prefix}.{name}" if prefix else name
        typ = hints[name]
        if dataclasses.is_dataclass(typ):
            _load_into(getattr(obj, name), value, key, errors)
            continue
        if value is None:
            continue
        if get_origin(typ) is dict:
            _load_map(obj, name, value, typ, key, errors)
            continue
        try:
            setattr(obj, name, _convert(value, typ, key))
        except ValueError as exc:
            errors.append(str(exc))


def _load_map(obj: Any, name: str, value: Any, typ: Any, key: str, errors: list[str]) -> None:
    """A map setting: the user's entries over the defaults (as VS Code merges objects), so
    ``{"markdown": true}`` turns one language on and leaves the others as they were; an
    invalid entry is reported and keeps its default."""
    if isinstance(value, list) and not value:
        value = {}  # an empty Lua table arrives as []
    if not isinstance(value, dict):
        errors.append(f"{key}: expected an object, got {value!r}")
        return
    factory = next(f for f in dataclasses.fields(obj) if f.name == name).default_factory
    merged: dict[str, Any] = factory()  # type: ignore[misc,operator]
    _, item = get_args(typ)
    for k, v in value.items():
        try:
            merged[k] = _convert(v, item, f"{key}[{k!r}]")
        except ValueError as exc:
            errors.append(str(exc))
    setattr(obj, name, merged)


def _wire_key(key: str) -> str:
    # A map's own key (`languages['git-commit']`) is data: it is not camel-cased.
    head, bracket, rest = key.partition("[")
    return ".".join(to_camel(part) for part in head.split(".")) + bracket + rest


def load_settings(raw: Any, base: Settings | None = None) -> LoadResult:
    """Build settings from a camelCase dict (as sent by an editor).

    `raw` may be the whole `qwenLsp` section or an object holding it under that key.
    Values not given keep the value of `base` (or the default).
    """
    settings = Settings()
    if base is not None:
        settings = Settings(
            model=dataclasses.replace(base.model),
            completion=dataclasses.replace(
                base.completion, languages=dict(base.completion.languages)
            ),
            context=dataclasses.replace(base.context, exclude=list(base.context.exclude)),
            engine=dataclasses.replace(base.engine),
            code_actions=dataclasses.replace(base.code_actions),
            protocol=dataclasses.replace(base.protocol),
        )
    errors: list[str] = []
    if raw is None:
        return LoadResult(settings, errors)
    if isinstance(raw, dict) and isinstance(raw.get(SECTION), dict):
        raw = raw[SECTION]
    if isinstance(raw, list) and not raw:
        raw = {}  # an empty Lua table arrives as []
    if not isinstance(raw, dict):
        message = f"{SECTION}: expected an object, got {raw!r}"
        log.warning("invalid settings, using the defaults: %s", message)
        return LoadResult(settings, [message])
    _load_into(settings, raw, "", errors)
    _check_patterns(settings, errors)
    errors = [_rewrite_error(e) for e in errors]
    for e in errors:
        log.warning("invalid setting, using the default: %s", e)
    return LoadResult(settings, errors)


def _check_patterns(settings: Settings, errors: list[str]) -> None:
    """Drop the `context.exclude` patterns that cannot be read, each with its error."""
    from context.walk import invalid_pattern

    kept = []
    for i, pattern in enumerate(settings.context.exclude):
        if invalid_pattern(pattern):
            errors.append(f"context.exclude[{i}]: {pattern!r} is not a valid pattern")
        else:
            kept.append(pattern)
    settings.context.exclude = kept


def _rewrite_error(message: str) -> str:
    key, sep, rest = message.partition(":")
    if not sep:
        return message
    return f"{SECTION}.{_wire_key(key)}:{rest}"


def to_wire(settings: Settings) -> dict[str, Any]:
    """The camelCase form of `settings` (what an editor would send)."""

    def convert(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj):
            return {
                to_camel(f.name): convert(getattr(obj, f.name)) for f in dataclasses.fields(obj)
            }
        if isinstance(obj, list):
            return [convert(v) for v in obj]
        return obj

    return convert(settings)  # type: ignore[no-any-return]
