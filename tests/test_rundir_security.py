"""Run directories are data: reading one never runs code, writing in one never follows a
link, the lock cannot be broken by deleting a file, and an edited log is refused."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from evonas.cli import main
from evonas.errors import RunDirError, UntrustedFileError
from evonas.runs import RunDir, key_file
from evonas.runs._rundir import SIGNED_MAGIC, run_key

TINY_SUPERNET = [
    "dataset.name=digits", "dataset.max_train=192", "dataset.max_val=48", "dataset.max_test=16",
    "dataset.val_fraction=0.2", "supernet.name=nb201", "supernet.params.channels=4",
    "supernet.params.cells_per_stage=1", "train.batch_size=32", "train.steps=6", "train.compute.device=cpu",
    "train.compute.num_threads=1", "evaluation.bn_batches=1", "evaluation.batch_size=32",
    "evaluation.val_images=32", "checkpoint_every=3", "log_every=2", "progress=false",
    "proxy.every=3", "proxy.archs_per_round=6", "proxy.min_memory=6", "proxy.predictor=linear",
]


class _Touch:
    """Unpickling this creates ``marker``: what a crafted pickle in a run directory could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def crafted(marker: Path) -> bytes:
    data = pickle.dumps(_Touch(marker))
    pickle.loads(data)  # the payload works: this test would see it run
    assert marker.exists()
    marker.unlink()
    return data


def snapshot(path: Path) -> dict[str, bytes]:
    """Every entry under ``path`` (hidden ones and links too) with its bytes or link target."""
    out = {}
    for p in sorted(path.rglob("*")):
        key = str(p.relative_to(path))
        if p.is_symlink():
            out[key] = b"-> " + os.readlink(p).encode()
        elif p.is_file():
            out[key] = p.read_bytes()
    return out


def cli_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("evonas: error: ") and err.count("\n") == 1, err
    return err


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def comparable(recs: list[dict]) -> list[dict]:
    """Records without wall-clock times and the checksums that cover them."""
    return [{k: v for k, v in r.items() if k not in ("time", "chk")} for r in recs if r["type"] != "checkpoint_ignored"]


# --------------------------------------------------------------------------------- key
@pytest.fixture
def own_key(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "keys" / "run-key"
    monkeypatch.setenv("EVONAS_KEY_FILE", str(path))
    return path


def test_the_key_is_made_once_private_and_outside_run_directories(own_key, tmp_path, monkeypatch):
    assert key_file() == own_key and not own_key.exists()
    key = run_key()
    assert len(key) == 32 and stat.S_IMODE(own_key.stat().st_mode) == 0o600
    assert run_key() == key and os.listdir(own_key.parent) == ["run-key"]  # no temporary left behind
    monkeypatch.delenv("EVONAS_KEY_FILE")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert key_file() == tmp_path / "xdg" / "evonas" / "run-key"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert key_file() == tmp_path / "home" / ".config" / "evonas" / "run-key"


@pytest.mark.parametrize("make, message", [
    (lambda p: (p.write_bytes(os.urandom(32)), p.chmod(0o644)), "is accessible to others (mode 644); run 'chmod 600"),
    (lambda p: (p.write_bytes(os.urandom(32)), p.chmod(0o620)), "is accessible to others (mode 620)"),
    (lambda p: p.symlink_to(p.parent / "elsewhere"), "is a symbolic link"),
    (lambda p: p.mkdir(), "is not a regular file"),
    (lambda p: (p.write_bytes(b"short"), p.chmod(0o600)), "is not an evonas key (32 bytes)"),
])
def test_an_unsafe_key_file_is_refused_on_one_line(own_key, tmp_path, make, message):
    own_key.parent.mkdir()
    (own_key.parent / "elsewhere").write_bytes(os.urandom(32))
    (own_key.parent / "elsewhere").chmod(0o600)
    make(own_key)
    run = RunDir.create(tmp_path / "run", {}, 0, "search")
    with pytest.raises(RunDirError, match="evonas key file") as info:
        run.save_checkpoint({"a": 1})
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not isinstance(info.value, UntrustedFileError)  # a search must not fall back on this
    assert not (tmp_path / "run" / "checkpoint.pkl").exists()


# ----------------------------------------------------------------------- signed files
def test_signed_files_are_verified_before_anything_is_unpickled(own_key, tmp_path, monkeypatch):
    run = RunDir.create(tmp_path / "run", {}, 0, "search")
    run.save_checkpoint({"step": 3})
    data = (tmp_path / "run" / "checkpoint.pkl").read_bytes()
    assert data.startswith(SIGNED_MAGIC) and run.load_checkpoint() == {"step": 3}
    marker = tmp_path / "MARKER"
    evil = crafted(marker)
    foreign = {
        "plain pickle": evil,
        "magic, no valid mac": SIGNED_MAGIC + bytes(32) + evil,
        "a signed file edited": data[:-2] + evil[-2:],
        "too short": SIGNED_MAGIC[:5],
    }
    for case, content in foreign.items():
        (tmp_path / "run" / "checkpoint.pkl").write_bytes(content)
        with pytest.raises(UntrustedFileError, match=r"checkpoint '.*checkpoint.pkl' is not signed with this user's "
                           r"evonas key \(a run directory from elsewhere, or edited\); it is never unpickled: delete it "
                           "to resume from the log$"):
            run.load_checkpoint()
        assert not marker.exists(), case
    # signed with another user's key
    (tmp_path / "run" / "checkpoint.pkl").write_bytes(data)
    monkeypatch.setenv("EVONAS_KEY_FILE", str(tmp_path / "other-key"))
    with pytest.raises(UntrustedFileError, match="is not signed with this user's evonas key"):
        run.load_checkpoint()
    monkeypatch.setenv("EVONAS_KEY_FILE", str(own_key))
    # a signed file cannot stand in for another one
    shutil.copy(tmp_path / "run" / "checkpoint.pkl", tmp_path / "run" / "predictor.pkl")
    with pytest.raises(UntrustedFileError, match="predictor.pkl' is not signed"):
        run.load_signed("predictor.pkl", "proxy predictor", "retrain")
    run.close()


# ------------------------------------------------------------------------------ search
def search_config(tmp_path: Path, evaluations: int = 40, **extra) -> Path:
    cfg = {
        "seed": 5,
        "evaluator": {"name": "tabular", "params": {"metric": "cifar10-valid_valid_acc", "noisy": True}},
        "fitness": {"name": "plain", "objectives": [{"metric": "cifar10-valid_valid_acc"}]},
        "strategy": {"name": "rea", "params": {"population_size": 5, "tournament_size": 2}},
        "budget": {"evaluations": evaluations},
        "checkpoint_every": 3,
        "progress": False,
    }
    cfg.update(extra)
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def searches(tmp_path, nb201_env):
    """A finished search (``full``) and a copy killed after 30 records, before its first
    checkpoint (``cut``)."""
    assert main(["search", "--config", str(search_config(tmp_path)), "--run-dir", str(tmp_path / "full")]) == 0
    full, cut = tmp_path / "full", tmp_path / "cut"
    shutil.copytree(full, cut)
    lines = (cut / "log.jsonl").read_text().splitlines(keepends=True)
    (cut / "log.jsonl").write_text("".join(lines[:30]))
    (cut / "result.json").unlink()
    (cut / "checkpoint.pkl").unlink()
    return full, cut


def test_a_crafted_search_checkpoint_is_never_unpickled_and_the_log_rebuilds_the_run(searches, tmp_path, capsys):
    full, cut = searches
    marker = tmp_path / "MARKER"
    (cut / "checkpoint.pkl").write_bytes(crafted(marker))
    assert main(["search", "--resume", str(cut), "--no-progress"]) == 0, capsys.readouterr().err
    assert not marker.exists()
    ignored = [r for r in records(cut) if r["type"] == "checkpoint_ignored"]
    assert len(ignored) == 1 and "is not signed with this user's evonas key" in ignored[0]["reason"]
    assert "rebuilt from its log" in ignored[0]["reason"]
    assert comparable(records(cut)) == comparable(records(full))
    assert json.loads((cut / "result.json").read_text()) == json.loads((full / "result.json").read_text())
    assert (cut / "checkpoint.pkl").read_bytes().startswith(SIGNED_MAGIC)  # replaced by a signed one
    # the rebuilt run's log is a valid chain: a second resume reads it and changes nothing
    before = snapshot(cut)
    assert main(["search", "--resume", str(cut), "--no-progress"]) == 0
    assert snapshot(cut) == before


def test_links_in_a_run_directory_are_never_followed_when_writing(searches, tmp_path, capsys):
    full, cut = searches
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    written = ("checkpoint.pkl", "best_so_far.png", "report.md", "scratch.json")
    for name in (".lock", *written):
        (cut / name).symlink_to(victim)
    assert main(["search", "--resume", str(cut), "--no-progress"]) == 0, capsys.readouterr().err
    assert main(["report", str(cut)]) == 0
    RunDir.open(cut).write_json("scratch.json", {"a": 1})
    assert victim.read_bytes() == b"precious\n"
    assert (cut / ".lock").is_symlink()  # an old evonas's lock file is left alone
    for name in written:
        assert not (cut / name).is_symlink() and (cut / name).stat().st_size > 0, name
    assert comparable(records(cut)) == comparable(records(full))
    # a linked entry is never read either: a finished run's summary is refused
    (cut / "result.json").unlink()
    (cut / "result.json").symlink_to(victim)
    err = cli_error(capsys, ["search", "--resume", str(cut), "--no-progress"])
    assert "result.json' is a symbolic link; evonas never follows links in a run directory" in err
    assert victim.read_bytes() == b"precious\n"


def test_a_linked_log_is_refused_and_its_target_untouched(searches, tmp_path, capsys):
    _, cut = searches
    victim = tmp_path / "victim.jsonl"
    # the target even looks like the log, with a torn last line the repair step would cut
    victim.write_bytes((cut / "log.jsonl").read_bytes() + b'{"type": "ev')
    before = victim.read_bytes()
    (cut / "log.jsonl").unlink()
    (cut / "log.jsonl").symlink_to(victim)
    state = snapshot(cut)
    err = cli_error(capsys, ["search", "--resume", str(cut), "--no-progress"])
    assert "log.jsonl' is a symbolic link; evonas never follows links in a run directory" in err
    assert victim.read_bytes() == before and snapshot(cut) == state


@pytest.mark.parametrize("edit", ["value", "swap", "drop", "mixed"])
def test_an_edited_or_spliced_log_is_refused_on_resume_and_nothing_changes(searches, capsys, edit):
    _, cut = searches
    lines = (cut / "log.jsonl").read_text().splitlines(keepends=True)
    if edit == "value":
        rec = json.loads(lines[4])
        assert rec["type"] == "eval"
        rec["evaluation"]["metrics"]["cifar10-valid_valid_acc"] = 99.9
        lines[4] = json.dumps(rec, separators=(",", ":")) + "\n"
        line = 5
    elif edit == "swap":
        lines[7], lines[8] = lines[8], lines[7]
        line = 8
    elif edit == "drop":
        del lines[10]
        line = 11
    else:
        rec = json.loads(lines[12])
        del rec["chk"]
        lines[12] = json.dumps(rec, separators=(",", ":")) + "\n"
        line = 13
    (cut / "log.jsonl").write_text("".join(lines))
    state = snapshot(cut)
    err = cli_error(capsys, ["search", "--resume", str(cut), "--no-progress"])
    reason = "records with and without checksums" if edit == "mixed" else "checksum mismatch"
    assert f"log.jsonl' was edited or spliced at line {line} ({reason}); restore it or start a new run" in err
    assert snapshot(cut) == state


def test_an_edited_log_is_refused_before_a_finished_run_is_extended(searches, capsys):
    full, _ = searches
    text = (full / "log.jsonl").read_text()
    (full / "log.jsonl").write_text(text.replace('"seed":', '"seed": ', 1))  # same values, other bytes: still fine
    assert main(["search", "--resume", str(full), "--no-progress"]) == 0
    capsys.readouterr()
    rec = json.loads(text.splitlines()[2])
    rec["arch_str"] = "edited"
    lines = text.splitlines(keepends=True)
    lines[2] = json.dumps(rec, separators=(",", ":")) + "\n"
    (full / "log.jsonl").write_text("".join(lines))
    state = snapshot(full)
    err = cli_error(capsys, ["search", "--resume", str(full), "budget.evaluations=80", "--no-progress"])
    assert "was edited or spliced at line 3 (checksum mismatch)" in err
    assert snapshot(full) == state  # config.yaml not extended, no record appended


def test_a_log_from_before_checksums_is_resumed_and_continued_without_them(searches):
    full, cut = searches
    legacy = [{k: v for k, v in r.items() if k != "chk"} for r in records(cut)]
    (cut / "log.jsonl").write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in legacy))
    assert main(["search", "--resume", str(cut), "--no-progress"]) == 0
    after = records(cut)
    assert not any("chk" in r for r in after) and len(after) > len(legacy)
    assert comparable(after) == comparable(records(full))


def test_the_last_record_s_checksum_continues_across_resumes(own_key, tmp_path):
    run = RunDir.create(tmp_path / "run", {}, 0, "search")
    run.append({"type": "a", "n": 1})
    run.close()
    with open(tmp_path / "run" / "log.jsonl", "a") as fh:
        fh.write('{"type": "b", "n"')  # torn by a kill
    again = RunDir.open(tmp_path / "run")
    again.lock()
    again.append({"type": "c", "k": {2: (1, 2)}})  # cuts the torn line, chains on record "a"
    again.close()
    got = RunDir.open(tmp_path / "run").read_log()
    assert [(r["type"], r.get("k")) for r in got] == [("a", None), ("c", {"2": [1, 2]})]
    assert all(len(r["chk"]) == 16 for r in got) and got[0]["chk"] != got[1]["chk"]


def test_an_edited_log_is_refused_before_its_torn_line_is_repaired(own_key, tmp_path):
    run = RunDir.create(tmp_path / "run", {}, 0, "search")
    for n in range(3):
        run.append({"type": "a", "n": n})
    run.close()
    log = tmp_path / "run" / "log.jsonl"
    text = log.read_text().replace('"n":1', '"n":7') + '{"type":"a","n'
    log.write_text(text)
    with pytest.raises(RunDirError, match=r"log\.jsonl' was edited or spliced at line 2 \(checksum mismatch\)"):
        RunDir(tmp_path / "run").read_log(repair=True)
    assert log.read_text() == text


# ------------------------------------------------------------------------------- lock
def test_the_lock_is_on_the_directory_itself(own_key, tmp_path):
    first = RunDir.create(tmp_path / "run", {}, 0, "search")
    second = RunDir.open(tmp_path / "run")
    with pytest.raises(RunDirError, match="is in use by another process"):
        second.lock()
    assert sorted(os.listdir(tmp_path / "run")) == ["config.yaml", "log.jsonl", "meta.yaml"]  # no lock file
    first.close()
    second.lock()
    second.close()


def test_deleting_a_lock_file_does_not_let_a_second_process_in(searches, tmp_path, capsys):
    _, cut = searches
    (cut / ".lock").write_text("12345")  # what an older evonas left
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from evonas.runs import RunDir
            run = RunDir.open({str(cut)!r})
            run.lock()
            print("locked", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        (cut / ".lock").unlink()
        state = snapshot(cut)
        err = cli_error(capsys, ["search", "--resume", str(cut), "--no-progress"])
        assert "is in use by another process" in err and snapshot(cut) == state
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert main(["search", "--resume", str(cut), "--no-progress"]) == 0
    assert not (cut / ".lock").exists()


# ---------------------------------------------------------------------------- supernet
@pytest.fixture(scope="module")
def supernet_run(tmp_path_factory) -> Path:
    from evonas.supernet import start_training

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = start_training(None, TINY_SUPERNET, run_dir=tmp_path_factory.mktemp("sn") / "run").run_dir
    finally:
        torch.set_num_threads(threads)
    assert (run / "predictor.pkl").read_bytes().startswith(SIGNED_MAGIC)
    return run


@pytest.fixture
def supernet(supernet_run, tmp_path) -> Path:
    """A copy of the finished supernet run, to damage."""
    copy = tmp_path / "sn"
    shutil.copytree(supernet_run, copy)
    return copy


def test_a_crafted_supernet_checkpoint_is_refused_and_nothing_changes(supernet, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    (supernet / "result.json").unlink()  # unfinished: resume would load the checkpoint
    (supernet / "checkpoint.pkl").write_bytes(crafted(marker))
    state = snapshot(supernet)
    err = cli_error(capsys, ["supernet", "train", "--resume", str(supernet), "--no-progress"])
    assert "checkpoint.pkl' is not signed with this user's evonas key" in err
    assert "it is never unpickled: delete it to train the supernet again from step 0" in err
    assert not marker.exists() and snapshot(supernet) == state


def _proxy_search(tmp_path: Path, run_dir: Path) -> list[str]:
    cfg = search_config(tmp_path, evaluations=4, evaluator={"name": "proxy", "params": {"run_dir": str(run_dir)}},
                        fitness={"name": "plain", "objectives": [{"metric": "proxy_val_loss", "direction": "min"}]})
    return ["search", "--config", str(cfg), "--run-dir", str(tmp_path / "search"), "--no-progress"]


def test_a_crafted_predictor_is_refused_by_rank_and_by_proxy_searches(supernet, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    (supernet / "predictor.pkl").write_bytes(crafted(marker))
    state = snapshot(supernet)
    err = cli_error(capsys, ["supernet", "rank", str(supernet), "--num-archs", "2", "--no-progress"])
    assert "proxy predictor" in err and "predictor.pkl' is not signed with this user's evonas key" in err
    assert "train the supernet again, or, if its checkpoint is yours, delete predictor.pkl and result.json" in err
    err = cli_error(capsys, _proxy_search(tmp_path, supernet))
    assert "predictor.pkl' is not signed with this user's evonas key" in err
    assert not marker.exists() and snapshot(supernet) == state and not (tmp_path / "search").exists()


def test_the_predictor_remedy_writes_it_again_from_the_checkpoint(supernet, tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (supernet / ".supernet.pt.tmp").symlink_to(victim)  # where an older evonas wrote its weights first
    (supernet / "predictor.pkl").unlink()
    (supernet / "result.json").unlink()
    assert main(["supernet", "train", "--resume", str(supernet), "--no-progress"]) == 0, capsys.readouterr().err
    assert victim.read_bytes() == b"precious"
    assert main(_proxy_search(tmp_path, supernet)) == 0, capsys.readouterr().err


@pytest.mark.parametrize("content", ["garbage", "crafted"])
def test_foreign_supernet_weights_are_refused_on_one_line(supernet, supernet_run, tmp_path, capsys, content):
    marker = tmp_path / "MARKER"
    (supernet / "supernet.pt").write_bytes(b"not weights at all" if content == "garbage" else crafted(marker))
    err = cli_error(capsys, ["supernet", "rank", str(supernet), "--num-archs", "2", "--no-progress"])
    assert "supernet.pt' cannot be read as supernet weights" in err and "train the supernet again" in err
    assert not marker.exists()
    buffer = tmp_path / "list.pt"
    torch.save([1, 2], buffer)  # readable as weights, but not a supernet's
    shutil.copy(buffer, supernet / "supernet.pt")
    err = cli_error(capsys, ["supernet", "rank", str(supernet), "--num-archs", "2", "--no-progress"])
    assert "supernet.pt' holds no supernet weights written by evonas" in err
    shutil.copy(supernet_run / "supernet.pt", tmp_path / "elsewhere.pt")  # real weights, but behind a link
    (supernet / "supernet.pt").unlink()
    (supernet / "supernet.pt").symlink_to(tmp_path / "elsewhere.pt")
    err = cli_error(capsys, ["supernet", "rank", str(supernet), "--num-archs", "2", "--no-progress"])
    assert "supernet.pt' is a symbolic link; evonas never follows links in a run directory" in err
