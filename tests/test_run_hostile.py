"""The CLI under hostile or unlucky conditions (issue 13 and the torchrun defects of issue 12):
resumes with other settings, arguments checked before the model loads, no half-made traces,
SIGTERM / SIGHUP, Ctrl-C under torchrun, partial merges, broken pipes, small ones."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cli
from xai_bias.store import open_trace

from .helpers import write_samples
from .test_scale import REPO, _cmd, _env, assert_same_trace

MODEL = "tiny:qwen2_5_vl"


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """One finished run (2 samples x complete,text_black, attention) reused read-only."""
    folder = tmp_path_factory.mktemp("base")
    samples = write_samples(folder, n=2)
    out = folder / "base.h5"
    assert cli.main(_cmd(samples, out)) == 0
    return samples, out


def _copy(src: Path, folder: Path) -> Path:
    dst = folder / src.name
    shutil.copy(src, dst)
    return dst


# ---------------------------------------------------------------- 13.2 resume compares settings
@pytest.mark.parametrize("flags, needles", [
    (["--seed", "3"], ["seed: 0 (file) vs 3 (this run)"]),
    (["--methods", "attention,knockout"], ["settings.methods"]),
    (["--conditions", "complete,text_white"], ["settings.conditions"]),
    (["--options", "2"], ["settings.options"]),
    (["--target", "gold"], ["target"]),
    (["--dtype", "bfloat16"], ["dtype: 'float32' (file) vs 'bfloat16'"]),
    (["--mode", "cot", "--max-new-tokens", "4"], ["settings.mode"]),
], ids=["seed", "methods", "conditions", "options", "target", "dtype", "mode"])
def test_resume_with_other_record_settings_is_exit_4(flags, needles, base_run, tmp_path, capsys):
    samples, base = base_run
    out = _copy(base, tmp_path)
    before = out.read_bytes()
    capsys.readouterr()
    assert cli.main([*_cmd(samples, out), *flags, "--resume"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(out) in err and "cannot resume" in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert out.read_bytes() == before


def test_resume_with_another_sample_file_is_exit_4(base_run, tmp_path, capsys):
    samples, base = base_run
    out = _copy(base, tmp_path)
    other = write_samples(tmp_path / "other", n=3)
    capsys.readouterr()
    assert cli.main([*_cmd(other, out), "--resume"]) == 4
    assert "sample_set" in capsys.readouterr().err


def test_resume_with_another_batch_size_goes_on_and_is_recorded(base_run, tmp_path, capsys):
    samples, base = base_run
    out = _copy(base, tmp_path)
    more = write_samples(tmp_path / "more", n=2)  # same bytes as base's file: same sample set
    assert more.read_bytes() == samples.read_bytes()
    capsys.readouterr()
    assert cli.main([*_cmd(samples, out), "--batch-size", "2", "--resume"]) == 0
    assert "already there" in capsys.readouterr().out
    with open_trace(out) as t:
        assert t.attrs["resumes"][-1]["changed"] == {"settings.batch_size": {"file": 1, "run": 2}}


# ---------------------------------------------------------------- 13.5 arguments before the model
@pytest.fixture
def no_model(monkeypatch):
    """Loading a model fails the test: the argument must be refused before."""
    import xai_bias.resolve

    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the argument was checked")

    monkeypatch.setattr(xai_bias.resolve, "load_model", refuse)


@pytest.mark.parametrize("flags, needle", [
    (["--mode", "cot", "--max-new-tokens", "-1"], "--max-new-tokens"),
    (["--mode", "cot", "--max-new-tokens", "0"], "--max-new-tokens"),
    (["--device", "gpu9"], "gpu9"),
    (["--device", "cuda:99"] if not __import__("torch").cuda.is_available() or
     __import__("torch").cuda.device_count() < 99 else ["--device", "cuda:999"], "cuda"),
    (["--batch-size", "0"], "--batch-size"),
    (["--limit", "-2"], "--limit"),
], ids=["max-new-tokens -1", "max-new-tokens 0", "device gpu9", "device cuda absent", "batch-size 0",
        "limit -2"])
def test_bad_argument_is_exit_2_before_the_model_loads_and_leaves_no_file(flags, needle, no_model, tmp_path,
                                                                          capsys):
    samples = write_samples(tmp_path, n=1)
    out = tmp_path / "t.h5"
    assert cli.main([*_cmd(samples, out), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err, err
    assert list(tmp_path.glob("*.h5")) == [] and not list(tmp_path.glob(".*tmp"))


def test_existing_output_is_refused_before_the_model_loads(no_model, base_run, tmp_path, capsys):
    samples, base = base_run
    out = _copy(base, tmp_path)
    before = out.read_bytes()
    assert cli.main(_cmd(samples, out)) == 5
    err = capsys.readouterr().err
    assert "--resume" in err and str(out) in err
    assert out.read_bytes() == before


def test_a_run_that_fails_before_its_first_record_leaves_no_trace(tmp_path, monkeypatch, capsys):
    """Today `--ig-steps 0` ends in a traceback after the trace was created: the corrected
    command then stops with exit 5 (the output exists)."""
    import xai_bias.run as run

    samples = write_samples(tmp_path, n=2)
    out = tmp_path / "t.h5"

    def broken(self, batch, targets):
        raise RuntimeError("a method failed on its first batch")

    monkeypatch.setattr(run.Runner, "_measure", broken)
    with pytest.raises(RuntimeError, match="first batch"):
        cli.main(_cmd(samples, out))
    assert not out.exists() and list(tmp_path.glob("*.h5")) == []
    monkeypatch.undo()
    assert cli.main(_cmd(samples, out)) == 0  # the corrected command runs
    with open_trace(out) as t:
        assert t.n_records == 4


def test_ig_steps_0_leaves_no_trace_behind(tmp_path, capsys):
    samples = write_samples(tmp_path, n=1)
    out = tmp_path / "t.h5"
    try:
        code = cli.main([*_cmd(samples, out), "--methods", "ig", "--ig-steps", "0"])
    except Exception:  # noqa: BLE001 - whichever way it fails, nothing may be left behind
        code = 1
    assert code != 0
    assert not out.exists()
    assert cli.main([*_cmd(samples, out), "--methods", "ig", "--ig-steps", "2"]) == 0


# ---------------------------------------------------------------- 13.7 SIGTERM / SIGHUP
def _wait_for_records(path: Path, proc: subprocess.Popen, n: int, timeout: float = 300) -> int:
    deadline = time.time() + timeout
    got = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with open_trace(path) as t:
                got = t.n_records
        except Exception:  # noqa: BLE001 - not there yet
            got = 0
        if got >= n:
            break
        time.sleep(0.05)
    return got


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_like_ctrl_c(sig, code, tmp_path):
    samples = write_samples(tmp_path, n=12)
    ref, out = tmp_path / "ref.h5", tmp_path / "int.h5"
    assert cli.main(_cmd(samples, ref)) == 0
    proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), *_cmd(samples, out)], cwd=REPO,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for_records(out, proc, 2) >= 2
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == code, stderr[-2000:]
    assert "Traceback" not in stderr
    resume = next(line.strip() for line in stdout.splitlines() if "--resume" in line)
    with open_trace(out) as t:
        assert 2 <= t.n_records < 24 and t.attrs["in_progress"] is False and t.attrs["partial"] is True
    assert cli.main(shlex.split(resume)[2:]) == 0
    assert_same_trace(ref, out)
    with open_trace(out) as t:
        assert t.attrs["partial"] is False


# ---------------------------------------------------------------- issue 12.5 / 13.7 torchrun
@pytest.mark.slow
def test_ctrl_c_under_torchrun_keeps_the_shards_and_resume_continues(tmp_path):
    """Today rank 0 merges the shards of an interrupted run into OUT and deletes them; the next
    `torchrun ... --resume` recomputes everything and reports it as written."""
    samples = write_samples(tmp_path, n=40)  # 80 records: the signal lands well before the end
    single, out = tmp_path / "single.h5", tmp_path / "dist.h5"
    assert cli.main(_cmd(samples, single)) == 0
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    argv = [torchrun, "--standalone", "--nproc_per_node", "2", str(REPO / "cli.py"), *_cmd(samples, out)]
    proc = subprocess.Popen(argv, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    shard = tmp_path / "dist.rank1-of-2.h5"
    assert _wait_for_records(shard, proc, 2) >= 2
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    stdout, stderr = proc.communicate(timeout=300)
    assert not out.exists(), (stdout, stderr[-3000:])
    shards = sorted(tmp_path.glob("dist.rank*-of-2.h5"))
    assert len(shards) == 2
    done = 0
    for s in shards:
        with open_trace(s) as t:
            assert t.attrs["in_progress"] is False and t.attrs["partial"] is True
            done += t.n_records
    assert 2 <= done < 80
    proc = subprocess.run([*argv, "--resume"], cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"wrote {80 - done} record(s) to {out} ({done} already there)" in proc.stdout, proc.stdout
    assert_same_trace(single, out)
    assert not list(tmp_path.glob("dist.rank*"))
    with open_trace(out) as t:
        assert t.attrs.get("partial") is False


@pytest.mark.slow
def test_resume_under_torchrun_extends_a_finished_run_without_recomputing_it(tmp_path):
    """A finished distributed run (OUT merged, no shards) resumed with more items: the ranks skip
    what OUT holds and OUT gets the new records; resumed again, nothing is computed."""
    samples = write_samples(tmp_path, n=5)
    single, out = tmp_path / "single.h5", tmp_path / "dist.h5"
    assert cli.main(_cmd(samples, single)) == 0
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    argv = [torchrun, "--standalone", "--nproc_per_node", "2", str(REPO / "cli.py"), *_cmd(samples, out)]
    for extra, expect in ((["--limit", "3"], "wrote 6 record(s)"),
                          (["--resume"], "wrote 4 record(s) to {out} (6 already there)"),
                          (["--resume"], "wrote 0 record(s) to {out} (10 already there)")):
        proc = subprocess.run([*argv, *extra], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert expect.format(out=out) in proc.stdout, proc.stdout
    assert_same_trace(single, out)
    assert not list(tmp_path.glob("dist.rank*")) and not list(tmp_path.glob(".dist*"))


# ---------------------------------------------------------------- 13.7 merge --allow-partial (CLI)
def test_merge_cli_refuses_a_partial_shard_unless_allowed(base_run, tmp_path, capsys):
    import h5py

    samples, base = base_run
    a = tmp_path / "a.h5"
    assert cli.main([*_cmd(samples, a), "--shard", "0/2"]) == 0
    b = tmp_path / "b.h5"
    assert cli.main([*_cmd(samples, b), "--shard", "1/2"]) == 0
    with h5py.File(b, "a") as f:
        f.attrs["partial"] = True
    capsys.readouterr()
    assert cli.main(["merge", str(a), str(b), "-o", str(tmp_path / "m.h5")]) == 4
    assert "--allow-partial" in capsys.readouterr().err
    assert cli.main(["merge", str(a), str(b), "-o", str(tmp_path / "m.h5"), "--allow-partial"]) == 0
    with open_trace(tmp_path / "m.h5") as t:
        assert t.attrs["partial"] is True and t.n_records == 4


# ---------------------------------------------------------------- 13.8 small ones
def test_broken_pipe_to_head_ends_quietly(tmp_path):
    from xai_bias.store import TraceWriter

    from .test_store import ATTRS, make_record

    p = tmp_path / "many.h5"
    with TraceWriter(p, ATTRS) as w:
        w.extend([make_record(i, status=f"error: sample {i} could not be read", mass=False)
                  for i in range(3000)])
    proc = subprocess.Popen(f"{shlex.quote(sys.executable)} cli.py inspect {shlex.quote(str(p))} --json | head -n 2",
                            shell=True, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, executable="/bin/bash")
    stdout, stderr = proc.communicate(timeout=300)
    assert len(stdout.splitlines()) == 2
    assert stderr == "", stderr[-2000:]
    pipe = subprocess.run(["/bin/bash", "-c", "set -o pipefail; "
                           f"{shlex.quote(sys.executable)} cli.py inspect {shlex.quote(str(p))} --json | head -n 1"
                           " >/dev/null; echo ${PIPESTATUS[0]}"], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert pipe.stdout.strip() == "141" and pipe.stderr == "", pipe


def test_estimate_latex_escapes_like_consistency(base_run, tmp_path, capsys):
    samples, base = base_run
    odd = tmp_path / "run_$x^2~{a}.h5"
    shutil.copy(base, odd)
    capsys.readouterr()
    assert cli.main(["estimate", str(odd), "--format", "latex", "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    from xai_bias.consistency import latex_escape

    assert latex_escape(str(odd)) in out
    assert r"run\_\$x\textasciicircum{}2\textasciitilde{}\{a\}" in out


def test_resume_on_a_read_only_trace_says_so(base_run, tmp_path, capsys, monkeypatch):
    samples, base = base_run
    out = _copy(base, tmp_path)
    out.chmod(0o444)
    if os.geteuid() == 0:  # root writes anyway: the file system's answer is injected
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **k: False if (Path(p) == out and mode & os.W_OK)
                            else real(p, mode, **k))
    before = out.read_bytes()
    capsys.readouterr()
    assert cli.main([*_cmd(samples, out), "--resume"]) == 5
    err = capsys.readouterr().err
    assert "read-only" in err and "--overwrite" not in err and str(out) in err
    assert out.read_bytes() == before


def test_model_folder_with_only_pytorch_model_bin_is_exit_2(tmp_path, capsys):
    from xai_bias.models import tiny_vlm

    folder = tiny_vlm("qwen2_5_vl").save(tmp_path / "model")
    for f in folder.glob("*.safetensors*"):
        f.unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not loaded: a pickle")
    samples = write_samples(tmp_path, n=1)
    out = tmp_path / "t.h5"
    assert cli.main([*_cmd(samples, out)[:2], str(folder), *_cmd(samples, out)[3:]]) == 2
    err = capsys.readouterr().err
    assert "pytorch_model.bin" in err and "safetensors" in err and "pickle" in err, err
    assert not out.exists()


def test_empty_sample_file_names_the_file_and_is_exit_3(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert cli.main(_cmd(empty, tmp_path / "t.h5")) == 3
    err = capsys.readouterr().err
    assert str(empty) in err and "empty" in err
    assert not (tmp_path / "t.h5").exists()


def test_prompt_longer_than_the_context_is_a_sample_error_before_the_forward_pass(tmp_path, capsys,
                                                                                    monkeypatch):
    """Today a 2 MB question runs for minutes; the model's context length is known up front."""
    from .helpers import write_image

    write_image(tmp_path / "img.png", 0)
    items = [{"id": "long", "question": "<image 1> " + "why " * 6000, "options": ["a", "b"], "answer": "A",
              "image_1": "img.png"},
             {"id": "short", "question": "<image 1> Which?", "options": ["a", "b"], "answer": "B",
              "image_1": "img.png"}]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps(i) + "\n" for i in items))
    import xai_bias.models as models

    real = models.collate

    def guarded(vlm, encoded):
        assert all(len(e.input_ids) <= 4096 for e in encoded), "a too-long prompt reached the model"
        return real(vlm, encoded)

    monkeypatch.setattr(models, "collate", guarded)
    out = tmp_path / "t.h5"
    capsys.readouterr()
    assert cli.main(_cmd(samples, out)) == 3
    err = capsys.readouterr().err
    assert "long" in err and "context" in err and "4096" in err, err
    assert cli.main([*_cmd(samples, out), "--on-error", "skip", "--overwrite"]) == 0
    with open_trace(out) as t:
        status = dict(zip(zip(t["records/sample_id"], t["records/condition"]), t["records/status"]))
    assert status[("short", "complete")] == "ok"
    assert "context" in status[("long", "complete")] and status[("long", "complete")].startswith("error")


# ---------------------------------------------------------------- 13.3 merge and figures on a full disk
def test_merge_and_figures_on_a_full_disk_are_exit_5_and_leave_nothing_half_written(base_run, tmp_path,
                                                                                   capsys, monkeypatch):
    """On a real full disk (a 256 KiB tmpfs) where this process may mount one; where it may not
    (no root) the free space and matplotlib's write are injected. Today: exit 1 and tracebacks."""
    from PIL import Image

    from .test_store_hostile import _small_filesystem

    samples, base = base_run
    other = tmp_path / "other.h5"
    write_samples(tmp_path / "o", n=4)
    assert cli.main([*_cmd(write_samples(tmp_path / "o", n=4), other), "--shard", "1/2"]) == 0
    with _small_filesystem(tmp_path, 256) as mnt:
        if mnt is None:
            import errno

            import matplotlib.figure

            real = shutil.disk_usage
            monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=0))
            calls = {"n": 0}
            save = matplotlib.figure.Figure.savefig

            def full(self, path, **kw):
                calls["n"] += 1
                if calls["n"] > 1:
                    Path(path).write_bytes(b"\x89PNG half")
                    raise OSError(errno.ENOSPC, "No space left on device")
                return save(self, path, **kw)

            monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
            mnt = tmp_path / "full"
            mnt.mkdir()
        capsys.readouterr()
        assert cli.main(["merge", str(base), str(other), "-o", str(mnt / "m.h5")]) == 5
        err = capsys.readouterr().err
        assert str(mnt / "m.h5") in err and "free" in err and "Traceback" not in err
        assert not list(mnt.glob("*m.h5*"))
        assert cli.main(["figures", str(base), "--out", str(mnt / "figs"), "--bootstrap", "0"]) == 5
        err = capsys.readouterr().err
        assert "figs" in err and "free" in err
        for png in (mnt / "figs").glob("*.png"):  # what was written is whole
            with Image.open(png) as im:
                im.load()
