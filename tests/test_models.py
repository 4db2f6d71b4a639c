"""Model files: reading GGUF headers, finding the model, and `qwen-lsp pull`.

Every model here is built by the test (tiny real models from lsp_server.testing.tiny_gguf,
or header-only files with gguf.GGUFWriter); nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from lsp_server import cli
from lsp_server.commands import pull
from lsp_server.engine.gguf_info import FIM_TOKEN_TEXTS, GgufError, read_gguf_info
from lsp_server.engine.models import (
    DEFAULT_QUANT,
    DEFAULT_REPO,
    default_models_dir,
    gguf_filename,
    hf_cache_dirs,
    resolve_model,
)
from lsp_server.testing.tiny_gguf import build_qwen2, build_qwen35

REPO_ROOT = Path(__file__).resolve().parent.parent


def write_gguf(
    path: Path,
    arch: str = "llama",
    kv: dict[str, Any] | None = None,
    *,
    tags: list[str] | None = None,
) -> Path:
    """A small GGUF with the given metadata (enough for gguf_info, not for llama.cpp)."""
    w = gguf.GGUFWriter(str(path), arch)
    for key, value in (kv or {}).items():
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        else:
            w.add_string(key, value)
    if tags is not None:
        w.add_array("general.tags", tags)
    w.add_tensor("x", np.zeros(4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def qwen35(models_dir: Path) -> Path:
    return build_qwen35(models_dir / "tiny-qwen35.gguf")


@pytest.fixture(scope="session")
def qwen2(models_dir: Path) -> Path:
    return build_qwen2(models_dir / "tiny-qwen2-coder.gguf")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home: no models folder, no Hugging Face cache, nothing from the real user."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("LOCALAPPDATA", str(home / "AppData" / "Local"))
    for var in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    return home


# --- read_gguf_info -------------------------------------------------------------------


def test_reads_the_hybrid_qwen35_model(qwen35: Path) -> None:
    info = read_gguf_info(qwen35)
    assert info.architecture == "qwen35"
    assert info.is_hybrid
    assert info.context_length == 262144
    assert info.block_count == 8
    assert set(info.fim_tokens) == set(FIM_TOKEN_TEXTS)
    assert info.has_fim_tokens
    assert info.has_chat_template and info.chat_template and "im_start" in info.chat_template
    assert not info.fim_trained_hint  # an instruct model, whatever its vocabulary has
    assert info.size_bytes == qwen35.stat().st_size
    assert info.quantization == "F32"
    assert info.name == "tiny-qwen3.6"


def test_fim_token_ids_match_the_vocabulary(qwen35: Path) -> None:
    info = read_gguf_info(qwen35)
    tokens = gguf.GGUFReader(str(qwen35)).fields["tokenizer.ggml.tokens"]
    vocab = [bytes(tokens.parts[i]).decode() for i in tokens.data]
    assert info.vocab_size == len(vocab)
    for text, token_id in info.fim_tokens.items():
        assert vocab[token_id] == text


def test_reads_an_attention_only_coder_model(qwen2: Path) -> None:
    info = read_gguf_info(qwen2)
    assert info.architecture == "qwen2"
    assert not info.is_hybrid
    assert info.context_length == 4096
    assert info.fim_trained_hint  # "coder" in its name


def test_model_without_fim_tokens_or_template(tmp_path: Path) -> None:
    path = build_qwen2(tmp_path / "plain.gguf", fim=False, chat_template=None, name="plain")
    info = read_gguf_info(path)
    assert info.fim_tokens == {}
    assert not info.has_fim_tokens
    assert not info.has_chat_template and info.chat_template is None


@pytest.mark.parametrize(
    ("arch", "keys", "hybrid"),
    [
        ("mamba2", {}, True),
        ("rwkv7", {}, True),
        ("qwen3next", {}, True),
        ("llama", {}, False),
        # An architecture newer than our list, recognised by its metadata.
        ("futurenet", {"futurenet.ssm.conv_kernel": 4}, True),
        ("futurenet", {"futurenet.full_attention_interval": 4}, True),
    ],
)
def test_hybrid_detection(tmp_path: Path, arch: str, keys: dict[str, int], hybrid: bool) -> None:
    info = read_gguf_info(write_gguf(tmp_path / "m.gguf", arch, keys))
    assert info.is_hybrid is hybrid


@pytest.mark.parametrize(
    ("filename", "kv", "tags", "expected"),
    [
        ("m.gguf", {"general.name": "Qwen2.5-Coder-7B"}, None, True),
        ("m.gguf", {"general.basename": "starcoder2"}, None, True),
        ("m.gguf", {"general.name": "Some Model"}, ["code", "fim"], True),
        ("codestral-22b.gguf", {}, None, True),
        ("m.gguf", {"general.name": "Qwen3.6-27B"}, ["chat"], False),
    ],
)
def test_fim_trained_hint(
    tmp_path: Path, filename: str, kv: dict[str, str], tags: list[str] | None, expected: bool
) -> None:
    info = read_gguf_info(write_gguf(tmp_path / filename, "llama", kv, tags=tags))
    assert info.fim_trained_hint is expected


def test_quantization_from_file_type_then_file_name(tmp_path: Path) -> None:
    file_type = {"general.file_type": int(gguf.LlamaFileType.MOSTLY_Q4_K_M)}
    typed = write_gguf(tmp_path / "a.gguf", kv=file_type)
    assert read_gguf_info(typed).quantization == "Q4_K_M"
    named = write_gguf(tmp_path / "Qwen3.6-27B-UD-Q4_K_XL.gguf")
    assert read_gguf_info(named).quantization == "UD-Q4_K_XL"
    split = write_gguf(tmp_path / "Qwen3.6-27B-Q8_0-00001-of-00002.gguf")
    assert read_gguf_info(split).quantization == "Q8_0"
    assert read_gguf_info(write_gguf(tmp_path / "model.gguf")).quantization is None


def test_a_16_gb_file_is_read_from_its_header_only(tmp_path: Path) -> None:
    """Only the header is read: a (sparse) 16 GB file with a 150K vocabulary is quick."""
    path = tmp_path / "big.gguf"
    w = gguf.GGUFWriter(str(path), "qwen35")
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(150_000)] + ["<|fim_prefix|>"])
    w.add_token_merges([f"t{i} t{i + 1}" for i in range(150_000)])
    n = 16_000_000_000 // 4
    w.add_tensor_info("huge", (n,), np.dtype(np.float32), n * 4)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    header_end = path.stat().st_size
    os.truncate(path, header_end + 32 + n * 4)  # sparse: no disk space used

    start = time.perf_counter()
    info = read_gguf_info(path)
    elapsed = time.perf_counter() - start
    assert info.size_bytes > 16e9
    assert info.fim_tokens == {"<|fim_prefix|>": 150_000}
    assert elapsed < 2.0, f"reading the header took {elapsed:.2f}s"

    os.truncate(path, 8_000_000_000)  # half a download
    with pytest.raises(GgufError, match="truncated.*interrupted download"):
        read_gguf_info(path)


def _truncated(src: Path, dest: Path, size: int) -> Path:
    data = src.read_bytes()[:size]
    dest.write_bytes(data)
    return dest


@pytest.mark.parametrize("cut", [6, 40, 2000, -100])
def test_truncated_files_are_reported(qwen35: Path, tmp_path: Path, cut: int) -> None:
    size = cut if cut > 0 else qwen35.stat().st_size + cut
    path = _truncated(qwen35, tmp_path / "cut.gguf", size)
    with pytest.raises(GgufError, match="truncated") as err:
        read_gguf_info(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (os.urandom(4096), "not a GGUF file"),
        (b"", "empty"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "Git LFS pointer"),
        (b"<!DOCTYPE html><html>404</html>", "web page"),
        (b"GGUF" + b"\xff" * 60, "corrupt"),
    ],
    ids=["random", "empty", "lfs-pointer", "html", "bad-version"],
)
def test_files_that_are_not_models(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(GgufError, match=expected):
        read_gguf_info(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(GgufError, match="not found"):
        read_gguf_info(tmp_path / "nope.gguf")
    with pytest.raises(GgufError, match="is a directory"):
        read_gguf_info(tmp_path)
    assert issubclass(GgufError, ValueError)


# --- resolve_model ----------------------------------------------------------------------


def _hf_repo(cache: Path, repo: str, files: dict[str, Path], commit: str = "abc123") -> Path:
    """A Hugging Face cache entry laid out as huggingface_hub does: blobs + symlinks."""
    org, name = repo.split("/")
    root = cache / f"models--{org}--{name}"
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (root / "blobs").mkdir(exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    for filename, src in files.items():
        blob = root / "blobs" / f"{filename.replace('/', '_')}.blob"
        shutil.copy(src, blob)
        target = snapshot / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(os.path.relpath(blob, target.parent))
        except OSError:  # no symlinks (Windows without developer mode): HF copies too
            shutil.copy(blob, target)
    return snapshot


def test_explicit_path_with_home_and_env_vars(
    home: Path, qwen35: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(qwen35, home / "m.gguf")
    res = resolve_model("~/m.gguf")
    assert res.path == home / "m.gguf"
    assert res.info is not None and res.info.architecture == "qwen35"
    assert res.source == "setting"
    monkeypatch.setenv("MY_MODELS", str(home))
    assert resolve_model("$MY_MODELS/m.gguf").path == home / "m.gguf"


def test_explicit_missing_path_does_not_fall_back(home: Path, qwen35: Path) -> None:
    default_models_dir().mkdir(parents=True)
    shutil.copy(qwen35, default_models_dir() / gguf_filename())
    res = resolve_model(str(home / "typo.gguf"))
    assert res.path is None
    assert "typo.gguf" in res.message and "no such file" in res.message
    assert "qwenLsp.model.path" in res.message


def test_explicit_path_with_unset_variable(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    res = resolve_model("$NOT_SET_ANYWHERE/m.gguf")
    assert res.path is None
    assert "NOT_SET_ANYWHERE" in res.message and "not set" in res.message


def test_explicit_directory_and_corrupt_file(home: Path, qwen35: Path) -> None:
    folder = home / "models"
    folder.mkdir()
    shutil.copy(qwen35, folder / "a.gguf")
    res = resolve_model(str(folder))
    assert res.path is None and "folder" in res.message and "a.gguf" in res.message

    broken = _truncated(qwen35, home / "broken.gguf", 5000)
    res = resolve_model(str(broken))
    assert res.path is None and "truncated" in res.message


def test_default_folder_prefers_qwen_and_the_default_quant(home: Path, qwen35: Path) -> None:
    folder = default_models_dir()
    folder.mkdir(parents=True)
    for name in ("aaa-other-model.gguf", "Qwen3.6-27B-Q8_0.gguf", gguf_filename(DEFAULT_QUANT)):
        shutil.copy(qwen35, folder / name)
    res = resolve_model("")
    assert res.path == folder / gguf_filename(DEFAULT_QUANT)
    assert res.source == "models-dir"
    assert resolve_model("").path == res.path  # the same choice every time


def test_any_gguf_in_the_default_folder_is_used(home: Path, qwen2: Path) -> None:
    folder = default_models_dir()
    folder.mkdir(parents=True)
    shutil.copy(qwen2, folder / "my-coder.gguf")
    assert resolve_model("").path == folder / "my-coder.gguf"


def test_default_folder_comes_before_the_hf_cache(home: Path, qwen35: Path) -> None:
    _hf_repo(home / ".cache" / "huggingface" / "hub", DEFAULT_REPO, {gguf_filename(): qwen35})
    folder = default_models_dir()
    folder.mkdir(parents=True)
    shutil.copy(qwen35, folder / "Qwen3.6-27B-IQ4_XS.gguf")
    assert resolve_model("").path == folder / "Qwen3.6-27B-IQ4_XS.gguf"


def test_hf_cache_layout(home: Path, qwen35: Path) -> None:
    cache = home / ".cache" / "huggingface" / "hub"
    snapshot = _hf_repo(
        cache,
        DEFAULT_REPO,
        {
            "Qwen3.6-27B-IQ4_XS.gguf": qwen35,
            gguf_filename(DEFAULT_QUANT): qwen35,
            "mmproj-F16.gguf": qwen35,
        },
    )
    _hf_repo(cache, "someone/Other-Model-GGUF", {"Qwen3.6-27B-Q4_K_M.gguf": qwen35})
    res = resolve_model("")
    assert res.path == snapshot / gguf_filename(DEFAULT_QUANT)
    assert res.source == "hf-cache"
    assert res.info is not None and res.info.architecture == "qwen35"


@pytest.mark.parametrize("var", ["HF_HUB_CACHE", "HF_HOME"])
def test_hf_cache_from_environment(
    home: Path, qwen35: Path, monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    custom = home / "elsewhere"
    monkeypatch.setenv(var, str(custom))
    cache = custom if var == "HF_HUB_CACHE" else custom / "hub"
    assert hf_cache_dirs()[0] == cache
    snapshot = _hf_repo(
        cache, "bartowski/Qwen_Qwen3.6-27B-GGUF", {"Qwen3.6-27B-IQ4_XS.gguf": qwen35}
    )
    assert resolve_model("").path == snapshot / "Qwen3.6-27B-IQ4_XS.gguf"


def test_split_models_count_by_their_first_part(home: Path, qwen35: Path) -> None:
    cache = home / ".cache" / "huggingface" / "hub"
    parts = {f"Q8_0/Qwen3.6-27B-Q8_0-0000{i}-of-00003.gguf": qwen35 for i in (1, 2, 3)}
    snapshot = _hf_repo(cache, DEFAULT_REPO, parts)
    res = resolve_model("")
    assert res.path == snapshot / "Q8_0" / "Qwen3.6-27B-Q8_0-00001-of-00003.gguf"


def test_split_model_with_a_missing_part_is_skipped(home: Path, qwen35: Path) -> None:
    folder = default_models_dir()
    folder.mkdir(parents=True)
    shutil.copy(qwen35, folder / "Qwen3.6-27B-Q8_0-00001-of-00002.gguf")
    res = resolve_model("")
    assert res.path is None
    assert "00002-of-00002" in res.message and "missing" in res.message

    shutil.copy(qwen35, folder / "zzz-fallback.gguf")
    res = resolve_model("")
    assert res.path == folder / "zzz-fallback.gguf"
    assert res.skipped and "missing" in res.skipped[0]


def test_corrupt_candidate_is_skipped_for_a_good_one(home: Path, qwen35: Path) -> None:
    folder = default_models_dir()
    folder.mkdir(parents=True)
    _truncated(qwen35, folder / gguf_filename(), 3000)
    shutil.copy(qwen35, folder / "Qwen3.6-27B-IQ4_XS.gguf")
    res = resolve_model("")
    assert res.path == folder / "Qwen3.6-27B-IQ4_XS.gguf"
    assert "truncated" in res.message


def test_nothing_found_says_how_to_get_the_model(home: Path, qwen35: Path) -> None:
    folder = default_models_dir()
    folder.mkdir(parents=True)
    shutil.copy(qwen35, folder / "mmproj-Qwen3.6-27B-F16.gguf")  # a vision projector only
    res = resolve_model("")
    assert res.path is None and res.info is None
    assert "qwen-lsp pull" in res.message
    assert "qwen-lsp pull --quant IQ4_XS" in res.message
    assert "16 GB GPUs" in res.message and "24 GB GPUs" in res.message
    assert "model.path" in res.message
    assert str(folder) in res.message
    assert any(str(home / ".cache" / "huggingface" / "hub") in s for s in res.searched)


# --- pull ----------------------------------------------------------------------------------


def _parse(*argv: str) -> Any:
    return cli.build_parser().parse_args(["pull", *argv])


def test_pull_arguments() -> None:
    args = _parse()
    assert (args.quant, args.repo, args.file, args.dest) == (
        DEFAULT_QUANT,
        DEFAULT_REPO,
        None,
        None,
    )
    assert args.func is pull.run
    args = _parse("--quant", "iq4_xs", "--repo", "me/Repo-GGUF", "--dest", "/x", "--file", "f.gguf")
    assert (args.quant, args.repo, args.dest, args.file) == (
        "IQ4_XS",
        "me/Repo-GGUF",
        "/x",
        "f.gguf",
    )
    with pytest.raises(SystemExit):
        _parse("--quant", "Q4 K M")


def _subprocess_env(home: Path, extra_path: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "XDG_"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "c"))
    paths = [str(extra_path)] if extra_path else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(REPO_ROOT)])
    return env


def test_pull_without_huggingface_hub_says_what_to_install(tmp_path: Path) -> None:
    # Make huggingface_hub absent even where it is installed: a package that fails to import.
    blocker = tmp_path / "block"
    (blocker / "huggingface_hub").mkdir(parents=True)
    (blocker / "huggingface_hub" / "__init__.py").write_text("raise ImportError('blocked')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lsp_server", "pull", "--dest", str(tmp_path / "dl")],
        cwd=REPO_ROOT,
        env=_subprocess_env(tmp_path, blocker),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'qwen-lsp[pull]'" in proc.stderr
    assert proc.stdout == ""


def _fake_hub(download: Any) -> types.ModuleType:
    module = types.ModuleType("huggingface_hub")
    module.hf_hub_download = download  # type: ignore[attr-defined]
    return module


def test_pull_downloads_into_the_models_folder(
    home: Path, qwen35: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, Any]] = []

    def download(repo_id: str, filename: str, local_dir: str, **kwargs: Any) -> str:
        calls.append({"repo_id": repo_id, "filename": filename, "local_dir": local_dir})
        target = Path(local_dir) / filename
        shutil.copy(qwen35, target)
        return str(target)

    monkeypatch.setitem(sys.modules, "huggingface_hub", _fake_hub(download))
    assert cli.main(["pull", "--quant", "IQ4_XS"]) == 0
    expected = default_models_dir() / "Qwen3.6-27B-IQ4_XS.gguf"
    assert calls == [
        {"repo_id": DEFAULT_REPO, "filename": expected.name, "local_dir": str(default_models_dir())}
    ]
    assert capsys.readouterr().out.strip() == str(expected)
    assert resolve_model("").path == expected  # the server finds it with no setting

    # A second pull finds the file and downloads nothing.
    calls.clear()
    assert cli.main(["pull", "--quant", "IQ4_XS"]) == 0
    assert calls == []
    assert "Already downloaded" in capsys.readouterr().out


def test_pull_fetches_every_part_of_a_split_model(
    home: Path, qwen35: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[str] = []

    def download(repo_id: str, filename: str, local_dir: str, **kwargs: Any) -> str:
        fetched.append(filename)
        target = Path(local_dir) / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(qwen35, target)
        return str(target)

    monkeypatch.setitem(sys.modules, "huggingface_hub", _fake_hub(download))
    first = "Q8_0/Qwen3.6-27B-Q8_0-00001-of-00002.gguf"
    assert cli.main(["pull", "--file", first, "--dest", str(home / "dl")]) == 0
    assert fetched == [first, "Q8_0/Qwen3.6-27B-Q8_0-00002-of-00002.gguf"]


def test_pull_without_network_fails_clearly(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class ConnectError(Exception):
        pass

    class LocalEntryNotFoundError(FileNotFoundError):
        pass

    def download(**kwargs: Any) -> str:
        try:
            raise ConnectError("Name or service not known")
        except ConnectError as exc:
            raise LocalEntryNotFoundError("cannot find the requested files") from exc

    monkeypatch.setitem(sys.modules, "huggingface_hub", _fake_hub(download))
    assert cli.main(["pull"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach huggingface.co" in err
    assert "Name or service not known" in err
    assert f"https://huggingface.co/{DEFAULT_REPO}/resolve/main/{gguf_filename()}" in err


@pytest.mark.parametrize(
    ("class_name", "expected"),
    [
        ("GatedRepoError", "accept"),
        ("RepositoryNotFoundError", "not found"),
        ("EntryNotFoundError", "has no file"),
        ("RemoteEntryNotFoundError", "--quant or --file"),
        ("OfflineModeIsEnabled", "HF_HUB_OFFLINE"),
    ],
)
def test_download_errors_are_explained(class_name: str, expected: str) -> None:
    exc = type(class_name, (Exception,), {})("boom")
    message = pull.describe_download_error(exc, DEFAULT_REPO, gguf_filename())
    assert expected in message
