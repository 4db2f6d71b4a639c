"""`qwen-lsp doctor`: the checks as functions, and the command as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from lsp_server.commands import doctor
from lsp_server.commands.doctor import (
    Check,
    Report,
    check_gpu_offload,
    check_grammars,
    check_llama_cpp,
    check_model,
    check_model_metadata,
    check_prompt_format,
    check_python,
    format_report,
    gpu_install_command,
    report_json,
    run_checks,
)
from lsp_server.engine.gguf_info import read_gguf_info
from lsp_server.testing.tiny_gguf import build_qwen2, build_qwen35

REPO_ROOT = Path(__file__).resolve().parent.parent
CUDA_FIX = (
    'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python'
)


@pytest.fixture(scope="session")
def qwen35(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_qwen35(tmp_path_factory.mktemp("doctor-models") / "Qwen3.6-27B-Q4_K_M.gguf")


@pytest.fixture(scope="session")
def qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_qwen2(tmp_path_factory.mktemp("doctor-models") / "tiny-coder.gguf")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No models folder and no Hugging Face cache."""
    home = tmp_path / "home"
    home.mkdir()
    for var, value in _isolated_env(home).items():
        monkeypatch.setenv(var, value)
    for var in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    return home


def _isolated_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "USERPROFILE": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "LOCALAPPDATA": str(home / "AppData" / "Local"),
    }


def run_doctor(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m lsp_server doctor ...` from the repository root, with an empty home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(_isolated_env(home))
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "lsp_server", "doctor", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _by_name(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in checks}


# --- the command -----------------------------------------------------------------------


def test_good_model_json(home: Path, qwen35: Path) -> None:
    proc = run_doctor(home, "--model", str(qwen35), "--json")
    report = json.loads(proc.stdout)
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert proc.returncode == 0 and report["ok"], failed
    checks = _by_name(report["checks"])
    assert set(checks) >= {"Python", "llama-cpp-python", "GPU offload", "model", "prompt format"}
    for check in report["checks"]:
        assert set(check) == {"name", "status", "detail", "fix"}
        assert check["status"] in ("ok", "warn", "fail")
        assert check["status"] == "ok" or check["fix"]  # every problem comes with its fix
    assert checks["model"]["status"] == "ok"
    assert "qwen35" in checks["model metadata"]["detail"]
    assert "hybrid" in checks["model metadata"]["detail"]
    assert "262,144" in checks["model metadata"]["detail"]
    assert report["model"]["architecture"] == "qwen35"
    assert report["model"]["isHybrid"] is True
    assert "<|fim_prefix|>" in report["model"]["fimTokens"]
    assert report["model"]["hasChatTemplate"] is True


def test_good_model_plain(home: Path, qwen35: Path) -> None:
    proc = run_doctor(home, "--model", str(qwen35))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    checks = [line for line in lines if line[:6].strip() in ("ok", "warn", "FAIL")]
    assert checks and all(line[4:6] == "  " for line in checks)
    assert any(line.startswith("ok    model: ") for line in lines)
    # A CPU-only build is a warning that comes with the reinstall command, not a failure.
    if any(line.startswith("warn  GPU offload") for line in lines):
        assert any("CMAKE_ARGS=" in line for line in lines)
    assert lines[-1].startswith("Ready to run")


def test_missing_model_fails_with_the_fix(home: Path, tmp_path: Path) -> None:
    proc = run_doctor(home, "--model", str(tmp_path / "nope.gguf"))
    assert proc.returncode == 1
    assert "FAIL  model:" in proc.stdout
    assert "no such file" in proc.stdout
    assert "fix: " in proc.stdout and "qwen-lsp pull" in proc.stdout


def test_no_model_anywhere_says_how_to_pull(home: Path) -> None:
    proc = run_doctor(home, "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    model = _by_name(report["checks"])["model"]
    assert model["status"] == "fail"
    assert "qwen-lsp pull --quant IQ4_XS" in model["fix"]
    assert report["ok"] is False and report["model"] is None


def test_corrupt_model_fails(home: Path, qwen35: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(qwen35.read_bytes()[: qwen35.stat().st_size // 2])
    proc = run_doctor(home, "--model", str(broken))
    assert proc.returncode == 1
    assert "FAIL  model:" in proc.stdout and "truncated" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr

    broken.write_bytes(b"\x00" * 1000)
    proc = run_doctor(home, "--model", str(broken), "--json")
    assert proc.returncode == 1
    assert "not a GGUF file" in _by_name(json.loads(proc.stdout)["checks"])["model"]["detail"]


def test_load_checks_the_architecture(home: Path, qwen35: Path, tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    proc = run_doctor(home, "--model", str(qwen35), "--load", "--json")
    load = _by_name(json.loads(proc.stdout)["checks"])["model load"]
    assert load["status"] == "ok", load
    assert proc.returncode == 0

    unknown = tmp_path / "unknown-arch.gguf"
    w = gguf.GGUFWriter(str(unknown), "frobnicator")
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["a", "b"])
    w.add_token_merges(["a b"])
    w.add_tensor("x", np.zeros(4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    proc = run_doctor(home, "--model", str(unknown), "--load")
    assert proc.returncode == 1
    assert "FAIL  model load:" in proc.stdout
    assert "unknown model architecture: 'frobnicator'" in proc.stdout


# --- the checks as functions ---------------------------------------------------------------


def test_python_version() -> None:
    assert check_python((3, 11, 2)).status == "ok"
    old = check_python((3, 9, 18))
    assert old.status == "fail" and "3.9.18" in old.detail and old.fix


def _fake_llama(version: str = "0.3.36", gpu: bool = True) -> types.ModuleType:
    module = types.ModuleType("llama_cpp")
    module.__version__ = version  # type: ignore[attr-defined]
    module.llama_supports_gpu_offload = lambda: gpu  # type: ignore[attr-defined]
    return module


def test_llama_cpp_checks() -> None:
    assert check_llama_cpp(_fake_llama("0.3.36")).status == "ok"
    assert check_llama_cpp(_fake_llama("0.4.0rc1")).status == "ok"
    assert check_llama_cpp(_fake_llama("0.3.4")).status == "fail"  # 3.4 < 3.36
    old = check_llama_cpp(_fake_llama("0.3.16"))
    assert old.status == "fail" and "qwen35" in old.detail
    assert "pip install --upgrade 'llama-cpp-python>=0.3.36'" in old.fix
    missing = check_llama_cpp(None, "missing")
    assert missing.status == "fail" and "pip install 'llama-cpp-python>=0.3.36'" in missing.fix
    broken = check_llama_cpp(None, "libllama.so: cannot open shared object file")
    assert broken.status == "fail" and "libllama.so" in broken.detail and broken.fix


def test_gpu_offload_checks() -> None:
    assert check_gpu_offload(_fake_llama(gpu=True)).status == "ok"
    cpu = check_gpu_offload(_fake_llama(gpu=False), "Linux", "x86_64")
    assert cpu.status == "warn" and cpu.fix == CUDA_FIX
    mac = check_gpu_offload(_fake_llama(gpu=False), "Darwin", "arm64")
    assert mac.status == "warn" and "-DGGML_METAL=on" in mac.fix
    assert "$env:CMAKE_ARGS" in gpu_install_command("Windows", "AMD64")
    assert gpu_install_command("Linux", "x86_64") == CUDA_FIX


def test_grammar_check_names_missing_packages() -> None:
    missing = check_grammars({"tree_sitter_does_not_exist": ("language",)})
    assert missing.status == "warn"
    assert "tree-sitter-does-not-exist" in missing.detail
    assert missing.fix == "pip install tree-sitter-does-not-exist"


def test_grammars_installed_here_load() -> None:
    pytest.importorskip("tree_sitter_python")
    ok = check_grammars({"tree_sitter_python": ("language",)})
    assert ok.status == "ok" and ok.detail.startswith("python; read as text: ruby, php")


def test_model_checks(home: Path, qwen35: Path, qwen2: Path) -> None:
    check, info = check_model(str(qwen35))
    assert check.status == "ok" and info is not None
    assert check_model_metadata(info).status == "ok"
    assert "chat prompt" in check_prompt_format(info).detail

    coder = read_gguf_info(qwen2)
    assert "FIM prompt" in check_prompt_format(coder).detail
    short = check_model_metadata(coder, context_size=32768)  # trained for 4096
    assert short.status == "warn" and "contextSize to 4096" in short.fix

    check, info = check_model(None)
    assert check.status == "fail" and info is None
    assert "qwen-lsp pull" in check.fix


def test_model_found_in_the_default_folder(home: Path, qwen35: Path) -> None:
    from lsp_server.engine.models import default_models_dir

    default_models_dir().mkdir(parents=True)
    shutil.copy(qwen35, default_models_dir() / qwen35.name)
    check, info = check_model(None)
    assert check.status == "ok" and "default models folder" in check.detail


def test_unusable_candidates_are_warned_about(home: Path, qwen35: Path) -> None:
    from lsp_server.engine.models import default_models_dir

    folder = default_models_dir()
    folder.mkdir(parents=True)
    (folder / "Qwen3.6-27B-Q4_K_M.gguf").write_bytes(qwen35.read_bytes()[:3000])
    report = run_checks(None)
    assert {c.name: c.status for c in report.checks}["model"] == "fail"
    assert "model candidate" not in {c.name for c in report.checks}  # listed in the failure

    shutil.copy(qwen35, folder / "Qwen3.6-27B-IQ4_XS.gguf")
    report = run_checks(None)
    statuses = {c.name: c for c in report.checks}
    assert statuses["model"].status == "ok" and report.ok
    assert statuses["model candidate"].status == "warn"
    assert "truncated" in statuses["model candidate"].detail


def test_missing_llama_cpp_fails_the_report(home: Path, qwen35: Path) -> None:
    report = run_checks(str(qwen35), load=True, import_llama=lambda: (None, "missing"))
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["llama-cpp-python"] == "fail"
    assert statuses["model load"] == "fail"
    assert not report.ok


def test_format_and_json() -> None:
    report = Report(
        [
            Check("Python", "ok", "Python 3.11.7"),
            Check("GPU offload", "warn", "CPU-only", CUDA_FIX),
            Check("model", "fail", "not found\nsearched here", "qwen-lsp pull"),
        ]
    )
    text = format_report(report)
    assert text.splitlines() == [
        "ok    Python: Python 3.11.7",
        "warn  GPU offload: CPU-only",
        f"      fix: {CUDA_FIX}",
        "FAIL  model: not found",
        "      searched here",
        "      fix: qwen-lsp pull",
        "1 required check(s) failed: qwen-lsp cannot run until fixed.",
    ]
    data = report_json(report)
    assert data["ok"] is False
    assert data["checks"][1] == {
        "name": "GPU offload",
        "status": "warn",
        "detail": "CPU-only",
        "fix": CUDA_FIX,
    }
    assert json.loads(json.dumps(data)) == data
    only_warnings = Report([Check("GPU offload", "warn", "CPU-only", CUDA_FIX)])
    assert only_warnings.ok
    assert format_report(only_warnings).endswith("Ready to run (1 warning(s)).")


def test_doctor_is_registered() -> None:
    from lsp_server import cli

    args = cli.build_parser().parse_args(["doctor", "--model", "m.gguf", "--json", "--load"])
    assert args.func is doctor.run
    assert (args.model, args.json, args.load) == ("m.gguf", True, True)


def test_settings_are_checked_against_the_model(home: Path, qwen2: Path) -> None:
    """What an editor plugin's health check runs: the user's tree, as JSON."""
    default = _by_name(
        json.loads(run_doctor(home, "--model", str(qwen2), "--json").stdout)["checks"]
    )
    trained = json.loads(run_doctor(home, "--model", str(qwen2), "--json").stdout)["model"][
        "contextLength"
    ]
    assert trained < 32768, "the tiny model must train a shorter context than the default"
    assert default["model metadata"]["status"] == "warn"
    assert "the default" in default["model metadata"]["detail"]
    tree = {"model": {"path": str(qwen2), "contextSize": trained}}
    proc = run_doctor(home, "--settings", json.dumps(tree), "--json")
    checks = _by_name(json.loads(proc.stdout)["checks"])
    assert checks["model"]["status"] == "ok"  # model.path was used
    assert checks["model metadata"]["status"] == "ok"
    tree = {"qwenLsp": {"model": {"path": str(qwen2), "contextSize": trained * 2}}}
    checks = _by_name(
        json.loads(run_doctor(home, "--settings", json.dumps(tree), "--json").stdout)["checks"]
    )
    assert checks["model metadata"]["status"] == "warn"
    assert f"({trained * 2:,})" in checks["model metadata"]["detail"]
    bad = {"model": {"path": str(qwen2)}, "completion": {"maxTokens": 0}}
    proc = run_doctor(home, "--settings", json.dumps(bad), "--json")
    checks = _by_name(json.loads(proc.stdout)["checks"])
    assert proc.returncode == 0 and checks["settings"]["status"] == "warn"
    assert "qwenLsp.completion.maxTokens" in checks["settings"]["detail"]
    proc = run_doctor(home, "--settings", "{not json")
    assert proc.returncode == 2 and "--settings is not JSON" in proc.stderr


def test_a_serving_engine_is_checked_instead_of_a_model_file(
    home: Path, serving_engine: str
) -> None:
    """With model.backend "openai" there is no model file to find: doctor asks the
    serving engine (and says that prompts go there)."""
    good = json.dumps({"model": {"backend": "openai", "url": serving_engine}})
    result = run_doctor(home, "--settings", good, "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert result.returncode == 0, result.stdout
    assert checks["serving engine"]["status"] == "ok"
    assert "prompts (your code) are sent there" in checks["serving engine"]["detail"]
    assert "model" not in checks and "GPU offload" not in checks
    down = json.dumps({"model": {"backend": "openai", "url": "http://127.0.0.1:1/v1"}})
    result = run_doctor(home, "--settings", down, "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert result.returncode == 1
    assert checks["serving engine"]["status"] == "fail"
    assert "connection refused" in checks["serving engine"]["detail"]
