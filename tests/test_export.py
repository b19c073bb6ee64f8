"""Exported ensembles: ``write_export``, ``load_ensemble`` and ``evonas predict``.

One tiny ensemble build (three NAS-Bench-201 members, C=4, one epoch, on scikit-learn's
8x8 digits) is shared by the module. The loaded export must reproduce the exported row:
its test accuracy exactly and the probabilities of ``combine_probs`` on the members'
saved test logits; PNG files of the test images must give the same predictions as the
test split's tensors.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import ensembles as E
import evonas
from evonas.cli import main as evonas_main
from evonas.config import from_dict
from evonas.data import ImageTensorDataset, cached_splits
from evonas.errors import DataError, RunDirError
from evonas.export import EXPORT_FORMAT, EnsembleModel, load_ensemble, read_export, select_row, write_export

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
]


class Foreign:
    """An object a weights-only load must refuse to unpickle."""


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ensemble build of three tiny members (pruners top_k and prs, size 2)."""
    root = tmp_path_factory.mktemp("export")
    raw = {
        "seed": 0,
        "candidates": {"archs": ARCHS},
        "dataset": {"name": "digits", "val_fraction": 0.25, "seed": 0},
        "train": {"epochs": 1, "batch_size": 64, "optim": {"lr": 0.05}, "compute": {"device": "cpu"}},
        "network": {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}},
        "executor": {"name": "serial"},
        "pruners": [{"name": "top_k", "params": {"size": 2}}, {"name": "prs", "params": {"size": 2}}],
        "progress": False,
    }
    cfg = root / "ensemble.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    return E.build_ensemble(cfg, run_dir=root / "run", progress=False).run_dir


@pytest.fixture(scope="module")
def exported(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("exported") / "export"
    write_export(run_dir, target)
    return target


@pytest.fixture(scope="module")
def model(exported: Path) -> EnsembleModel:
    return load_ensemble(exported)


def rows_of(run_dir: Path) -> list[E.EnsembleRow]:
    import json

    return [E.EnsembleRow.from_dict(r) for r in json.loads((run_dir / "result.json").read_text())["rows"]]


def split_tensors(run_dir: Path) -> tuple[ImageTensorDataset, torch.Tensor, torch.Tensor]:
    config = from_dict(E.EnsembleConfig, yaml.safe_load((run_dir / "config.yaml").read_text()))
    test = cached_splits(config.dataset).test
    assert isinstance(test, ImageTensorDataset)
    x, y = test.batch(range(len(test)))
    return test, x, y


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(100.0 * np.mean(probs.argmax(axis=1) == labels))


def member_test_probs(run_dir: Path, names: tuple[str, ...]) -> np.ndarray:
    return np.stack([E.Member.load(run_dir / "pool" / "members" / n).test_probs() for n in names])


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = evonas_main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert captured.err.count("\n") == 1 and captured.err.startswith("evonas: error: "), captured.err
    assert captured.out == ""
    return captured.err


def png_pixels(values: torch.Tensor) -> np.ndarray:
    """Digits values 0..16 as 8-bit pixels (value * 255 / 16, rounded)."""
    return np.rint(values.numpy().astype(np.float64) * 255.0 / 16.0).astype(np.uint8)


def write_pngs(folder: Path, test: ImageTensorDataset, count: int) -> tuple[list[Path], np.ndarray]:
    """The first ``count`` test images as greyscale PNGs; returns the files and their pixels (N, 1, 8, 8)."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = png_pixels(test.images[test.indices[:count]])
    files = []
    for i, image in enumerate(pixels):
        path = folder / f"img{i:04d}.png"
        Image.fromarray(image[0], mode="L").save(path)
        files.append(path)
    return files, pixels


def read_csv(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


# --------------------------------------------------------------------------- round trip
def test_export_round_trip_reproduces_the_row(run_dir: Path, exported: Path, model: EnsembleModel) -> None:
    rows = rows_of(run_dir)
    row = next(r for r in rows if r.label == model.label)
    record = yaml.safe_load((exported / "ensemble.yaml").read_text())
    assert record == read_export(exported) and record["format"] == EXPORT_FORMAT
    assert record["label"] == row.label and record["kind"] == "pruner" and record["pruner"] == row.pruner
    assert [m["name"] for m in record["members"]] == list(row.members) == list(model.members)
    assert record["val_acc"] == row.val_acc and record["test_acc"] == row.test_acc
    assert record["source"]["run_dir"] == str(run_dir)
    for m in record["members"]:
        saved = E.Member.load(run_dir / "pool" / "members" / m["name"])
        weights = (exported / "members" / f"{m['name']}.pt").read_bytes()
        assert weights == (run_dir / "pool" / "members" / m["name"] / "model.pt").read_bytes()
        assert m["sha256"] == hashlib.sha256(weights).hexdigest()
        assert (exported / "members" / f"{m['name']}.yaml").read_bytes() == (
            run_dir / "pool" / "members" / m["name"] / "member.yaml").read_bytes()
        assert m["arch"] == saved.arch_str and m["num_params"] == saved.num_params
        assert m["network"] == {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}}
    assert sorted(p.name for p in exported.iterdir()) == ["ensemble.yaml", "members"]

    test, x, y = split_tensors(run_dir)
    splits = cached_splits(from_dict(E.EnsembleConfig, yaml.safe_load((run_dir / "config.yaml").read_text())).dataset)
    assert model.classes == splits.classes == tuple(str(i) for i in range(10))
    assert model.preprocessing["in_channels"] == 1 and model.preprocessing["image_size"] == [8, 8]
    assert model.preprocessing["mean"] == list(splits.mean) and model.preprocessing["std"] == list(splits.std)
    assert not model.training
    with torch.no_grad():
        probs = model(x).numpy()
    assert probs.shape == (len(test), 10) and probs.dtype == np.float64
    assert abs(accuracy(probs, y.numpy()) - row.test_acc) < 1e-6
    expected = E.combine_probs(member_test_probs(run_dir, row.members), row.weights)
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-5)


def test_every_row_exports_and_reproduces_its_test_accuracy(run_dir: Path, tmp_path: Path) -> None:
    _, x, y = split_tensors(run_dir)
    rows = rows_of(run_dir)
    assert {r.kind for r in rows} == {"pruner", "baseline"}
    for i, row in enumerate(rows):
        record = write_export(run_dir, tmp_path / f"e{i}", row.label)
        assert record["label"] == row.label and record["kind"] == row.kind
        loaded = evonas.load_ensemble(tmp_path / f"e{i}")
        assert loaded.members == row.members
        np.testing.assert_allclose(loaded.weights, np.asarray(row.weights) / sum(row.weights), atol=1e-12)
        with torch.no_grad():
            assert abs(accuracy(loaded(x).numpy(), y.numpy()) - row.test_acc) < 1e-6, row.label


def test_a_pipeline_run_directory_is_loaded_through_its_export_folder(exported: Path, tmp_path: Path) -> None:
    run = tmp_path / "pipeline-run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "meta.yaml").write_text("kind: pipeline\n")
    with pytest.raises(DataError, match=r"has no export: run `evonas run --resume .*pipeline-run` to finish"):
        load_ensemble(run)
    shutil.copytree(exported, run / "export")
    loaded = load_ensemble(run)
    assert loaded.members == load_ensemble(exported).members
    assert read_export(run / "export" / "ensemble.yaml")["label"] == loaded.label


# -------------------------------------------------------------------------- label rule
def row(label: str, val_acc: float, num_members: int, kind: str = "pruner") -> E.EnsembleRow:
    names = tuple(f"m{i}" for i in range(num_members))
    return E.EnsembleRow(label, kind, None if kind == "baseline" else label, names, (1 / num_members,) * num_members,
                         num_members, None, val_acc, 50.0, 1.0, 0.1, {})


def test_the_default_row_is_the_best_pruner_by_validation_accuracy() -> None:
    rows = [
        row("full ensemble", 99.0, 3, kind="baseline"),
        row("a", 60.0, 3),
        row("b", math.nan, 1),
        row("c", 70.0, 3),
        row("d", 70.0, 2),
        row("e", 70.0, 2),
        row("f", 65.0, 1),
    ]
    assert select_row(rows).label == "d"  # best val, fewer members, then the earlier row
    assert select_row(rows[:4]).label == "c"
    assert select_row(rows[:3]).label == "a"  # NaN never wins
    assert select_row(rows, "full ensemble").label == "full ensemble"
    with pytest.raises(DataError, match=r"no row 'g'; valid labels: 'full ensemble', 'a', 'b', 'c', 'd', 'e', 'f'"):
        select_row(rows, "g")
    with pytest.raises(DataError, match="no pruner row to export by default; choose a label among 'full ensemble'"):
        select_row(rows[:1])


def test_write_export_picks_the_default_row_of_the_run(run_dir: Path, model: EnsembleModel) -> None:
    pruners = [r for r in rows_of(run_dir) if r.kind == "pruner"]
    best = max(pruners, key=lambda r: (r.val_acc, -r.num_members, -pruners.index(r)))
    assert model.label == best.label


def test_an_unknown_label_lists_the_rows_and_writes_nothing(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no row 'pie'; valid labels: 'top_k', 'prs', 'best single \(val\)'"):
        write_export(run_dir, tmp_path / "export", "pie")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ writing
def test_an_existing_export_is_replaced_only_with_overwrite(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "export"
    write_export(run_dir, target, "prs")
    before = (target / "ensemble.yaml").read_bytes()
    with pytest.raises(DataError, match="already exists; pass overwrite=True"):
        write_export(run_dir, target, "top_k")
    assert (target / "ensemble.yaml").read_bytes() == before
    write_export(run_dir, target, "top_k", overwrite=True)
    assert read_export(target)["label"] == "top_k"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary folder left behind


def test_symbolic_links_are_never_followed(run_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    link = tmp_path / "export"
    link.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(DataError, match="already exists"):
        write_export(run_dir, link, "prs")
    write_export(run_dir, link, "prs", overwrite=True)
    assert not link.is_symlink() and (link / "ensemble.yaml").is_file()
    assert [p.name for p in elsewhere.iterdir()] == ["keep.txt"]

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock"))
    members = rows_of(run_dir)[0].members
    checkpoint = copy / "pool" / "members" / members[0] / "model.pt"
    secret = tmp_path / "secret.pt"
    checkpoint.rename(secret)
    checkpoint.symlink_to(secret)
    with pytest.raises(DataError, match="is a symbolic link"):
        write_export(copy, copy / "export", rows_of(run_dir)[0].label)
    assert not (copy / "export").exists()


def test_a_run_that_is_not_a_finished_ensemble_is_refused(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="does not exist"):
        write_export(tmp_path / "nowhere", tmp_path / "export")
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock", "result.json"))
    with pytest.raises(RunDirError, match="has no result.json yet"):
        write_export(copy, tmp_path / "export")
    meta = yaml.safe_load((copy / "meta.yaml").read_text())
    (copy / "meta.yaml").write_text(yaml.safe_dump({**meta, "kind": "search"}))
    with pytest.raises(RunDirError, match="holds a 'search' run, not a 'ensemble' run"):
        write_export(copy, tmp_path / "export")
    assert not (tmp_path / "export").exists()


# ------------------------------------------------------------------------------ loading
def test_load_errors_name_the_path_and_what_is_expected(run_dir: Path, exported: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist; expected an export folder holding ensemble.yaml"):
        load_ensemble(tmp_path / "nowhere")
    with pytest.raises(DataError, match="is neither an export nor a run directory"):
        load_ensemble(tmp_path)
    with pytest.raises(DataError, match=r"ensemble run .* has no export: write one with evonas.export.write_export"):
        load_ensemble(run_dir)

    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    text = (broken / "ensemble.yaml").read_text()
    (broken / "ensemble.yaml").write_text("label: [\n")
    with pytest.raises(DataError, match=r"broken/ensemble.yaml' is not valid YAML at line 2"):
        load_ensemble(broken)
    (broken / "ensemble.yaml").write_text(text.replace(EXPORT_FORMAT, "something-else/1"))
    with pytest.raises(DataError, match="is not an 'evonas-ensemble-export/1' file; its format is 'something-else/1'"):
        load_ensemble(broken)
    record = yaml.safe_load(text)
    del record["members"][0]["arch"]
    (broken / "ensemble.yaml").write_text(yaml.safe_dump(record))
    with pytest.raises(DataError, match=r"is malformed: missing required key 'ensemble.yaml.members\[0\].arch'"):
        load_ensemble(broken)
    record = yaml.safe_load(text)
    record["preprocessing"]["mean"] = [0.1, 0.2]
    (broken / "ensemble.yaml").write_text(yaml.safe_dump(record))
    with pytest.raises(DataError, match="mean needs 1 finite values"):
        load_ensemble(broken)

    (broken / "ensemble.yaml").write_text(text)
    name = yaml.safe_load(text)["members"][-1]["name"]
    weights = broken / "members" / f"{name}.pt"
    data = weights.read_bytes()
    weights.write_bytes(data[:-8])
    with pytest.raises(DataError, match=rf"the weights '.*{name}.pt' differ from those exported \(sha256 mismatch\)"):
        load_ensemble(broken)
    weights.unlink()
    with pytest.raises(DataError, match=rf"member '{name}' of .*: its weights '.*{name}.pt' are missing"):
        load_ensemble(broken)

    # A pickle of arbitrary objects (with a matching checksum) is refused, never unpickled.
    buffer = io.BytesIO()
    torch.save({"state": Foreign()}, buffer)
    weights.write_bytes(buffer.getvalue())
    record = yaml.safe_load(text)
    record["members"][-1]["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    (broken / "ensemble.yaml").write_text(yaml.safe_dump(record))
    with pytest.raises(DataError, match=rf"cannot read the weights '.*{name}.pt': Weights only load failed"):
        load_ensemble(broken)


# ------------------------------------------------------------------------------- inputs
def test_preprocess_is_the_training_pipelines_normalisation(model: EnsembleModel) -> None:
    rng = np.random.default_rng(0)
    pixels = torch.from_numpy(rng.integers(0, 256, size=(5, 1, 8, 8), dtype=np.uint8))
    reference = ImageTensorDataset(pixels, torch.zeros(5, dtype=torch.int64), mean=model.preprocessing["mean"],
                                   std=model.preprocessing["std"], scale=1 / 255)
    x = model.preprocess(pixels)
    assert x.dtype == torch.float32 and torch.equal(x, reference.batch(range(5))[0])
    images = [Image.fromarray(p[0].numpy(), mode="L") for p in pixels]
    assert torch.equal(model.preprocess(images), x) and torch.equal(model.preprocess(pixels.numpy()), x)
    # batches of other sizes may differ in the last float32 bits of the members' logits
    np.testing.assert_allclose(model.predict_proba(images, batch_size=2).numpy(), model(x).detach().numpy(),
                               rtol=0, atol=1e-7)
    with pytest.raises(DataError, match=r"image 0 is 8x8 with 3 channel\(s\) \(mode RGB\); the ensemble takes images "
                                        r"of 8x8 \(width x height\) with 1 channel\(s\) \(mode L\)"):
        model.preprocess([images[0].convert("RGB")])
    with pytest.raises(DataError, match=r"takes a batch of shape \(N, 1, 8, 8\); got \(5, 1, 8, 9\)"):
        model.preprocess(torch.zeros(5, 1, 8, 9, dtype=torch.uint8))
    with pytest.raises(DataError, match="takes 8-bit pixels"):
        model.preprocess(x)


def test_predict_on_png_files_agrees_with_the_test_split(run_dir: Path, exported: Path, model: EnsembleModel,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test, x, _ = split_tensors(run_dir)
    files, pixels = write_pngs(tmp_path / "images" / "nested", test, 120)
    out = tmp_path / "predictions.csv"
    assert evonas_main(["predict", str(exported), str(tmp_path / "images"), "--output", str(out), "--batch-size", "7"]) == 0
    assert f"120 predictions of ensemble {model.label!r} written to {out}" in capsys.readouterr().out
    header, rows = read_csv(out.read_text())
    assert header == ["path", "label", "class", "confidence", *(f"prob_{c}" for c in range(10))]
    assert [r[0] for r in rows] == [str(f) for f in files]
    probs = np.array([[float(v) for v in r[4:]] for r in rows])
    labels = np.array([int(r[1]) for r in rows])
    assert [r[2] for r in rows] == [str(v) for v in labels]
    np.testing.assert_allclose([float(r[3]) for r in rows], probs.max(axis=1), rtol=0, atol=0)
    np.testing.assert_array_equal(labels, probs.argmax(axis=1))
    # exactly the model on the same pixels, up to the 8 significant digits of the CSV
    np.testing.assert_allclose(probs, model.predict_proba(torch.from_numpy(pixels)).numpy(), rtol=1e-7, atol=1e-9)
    # the PNGs quantise value/16 to pixel/255; predictions agree with the tensor split
    with torch.no_grad():
        split_probs = model(x[:120]).numpy()
    agree = np.mean(labels == split_probs.argmax(axis=1))
    assert agree >= 0.95, agree
    assert np.abs(probs - split_probs).max() < 0.05

    assert evonas_main(["predict", str(exported), str(files[3]), str(files[1]), str(files[3])]) == 0
    header2, rows2 = read_csv(capsys.readouterr().out)
    assert header2 == header and [r[0] for r in rows2] == [str(files[3]), str(files[1])]
    assert rows2[0] == rows[3] and rows2[1] == rows[1]


def test_a_grey_palette_image_is_read_as_greyscale(model: EnsembleModel, tmp_path: Path) -> None:
    from evonas._predict import predict_files

    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(pixels, mode="L").save(tmp_path / "grey.png")
    palette = Image.fromarray(pixels, mode="L").convert("P")  # a palette of greys
    palette.save(tmp_path / "palette.gif")
    with Image.open(tmp_path / "palette.gif") as opened:
        assert opened.mode == "P"
    probs = predict_files(model, [tmp_path / "grey.png", tmp_path / "palette.gif"])
    np.testing.assert_array_equal(probs[0], probs[1])


def test_predict_errors_are_one_line_and_write_nothing(run_dir: Path, exported: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    test, _, _ = split_tensors(run_dir)
    files, pixels = write_pngs(tmp_path / "good", test, 3)
    out = tmp_path / "out.csv"

    big = tmp_path / "bad" / "big.png"
    big.parent.mkdir()
    Image.fromarray(np.zeros((16, 12), dtype=np.uint8), mode="L").save(big)
    err = one_line_error(capsys, ["predict", str(exported), str(tmp_path / "good"), str(big), "--output", str(out)])
    assert f"{str(big)!r} is 12x16 with 1 channel(s) (mode L); the ensemble takes images of 8x8 (width x height)" in err
    assert not out.exists()

    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.repeat(pixels[0].transpose(1, 2, 0), 3, axis=2), mode="RGB").save(rgb)
    err = one_line_error(capsys, ["predict", str(exported), str(files[0]), str(rgb)])
    assert f"{str(rgb)!r} is 8x8 with 3 channel(s) (mode RGB)" in err and "with 1 channel(s) (mode L)" in err

    err = one_line_error(capsys, ["predict", str(run_dir), str(files[0])])
    assert f"ensemble run {str(run_dir)!r} has no export" in err
    err = one_line_error(capsys, ["predict", str(tmp_path / "good"), str(files[0])])
    assert f"{str(tmp_path / 'good')!r} is neither an export nor a run directory" in err
    err = one_line_error(capsys, ["predict", str(tmp_path / "nowhere"), str(files[0])])
    assert "does not exist; expected an export folder holding ensemble.yaml" in err

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    err = one_line_error(capsys, ["predict", str(exported), str(tmp_path / "empty")])
    assert "no image files (.png, .jpg, .jpeg, .bmp, .gif, .webp) found in" in err
    err = one_line_error(capsys, ["predict", str(exported), str(tmp_path / "empty" / "notes.txt")])
    assert "is not an image file" in err
    err = one_line_error(capsys, ["predict", str(exported), str(tmp_path / "missing.png")])
    assert f"{str(tmp_path / 'missing.png')!r} does not exist" in err
    err = one_line_error(capsys, ["predict", str(exported), str(files[0]), "--batch-size", "0"])
    assert "invalid value 0 for '--batch-size'" in err

    out.write_text("precious\n")
    err = one_line_error(capsys, ["predict", str(exported), str(tmp_path / "good"), "--output", str(out)])
    assert f"--output {str(out)!r} already exists; pass --force to overwrite it" in err
    assert out.read_text() == "precious\n"
    assert evonas_main(["predict", str(exported), str(tmp_path / "good"), "--output", str(out), "--force"]) == 0
    header, rows = read_csv(out.read_text())
    assert header[:4] == ["path", "label", "class", "confidence"] and len(header) == 14 and len(rows) == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary files left


def test_load_ensemble_is_exported_lazily() -> None:
    import subprocess
    import sys

    code = "import sys, evonas; assert 'torch' not in sys.modules; from evonas import load_ensemble; print(load_ensemble.__module__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "evonas.export"
    assert "load_ensemble" in evonas.__all__
