"""The synthetic invariance suite: labels are right, images show them, output is deterministic,
COCO scenes are valid for pycocotools, the registered loaders read it, and bad input is refused."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import rgb_to_hsv
from PIL import Image, ImageFilter
from scipy import ndimage

from mast_bench.data.synthetic import suite as synthetic
from mast_bench.data.synthetic.factors import (
    FEWSHOT_CLASSES,
    HUE_BINS,
    HUE_JITTER,
    ORIENT_JITTER,
    ORIENTATION_SHAPE,
    SHAPE_CLASSES,
    SYNTHETIC_TASKS,
    TASK_INVARIANCE,
    TASKS,
    ObjectFactors,
    factors_from_row,
    position_band,
)
from mast_bench.data.synthetic.manifest import GENERATOR_VERSION
from mast_bench.data.synthetic.render import object_alpha, render
from mast_bench.data.synthetic.suite import SIZES, load_manifest, make_synthetic, read_factors, verify_suite
from mast_bench.errors import DatasetError
from mast_bench.fileio import OutputDirError, sha256_file
from mast_bench.registry import DATASETS

SZ = SIZES["test"]


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _task_rows(root: Path, key: str) -> list[dict[str, str]]:
    return [r for r in read_factors(root) if r["path"].startswith(f"tasks/{key}/")]


def _hue_dist(a: np.ndarray | float, b: float) -> np.ndarray:
    return np.abs((np.asarray(a) - b + 180.0) % 360.0 - 180.0)


# ---------------------------------------------------------------- layout, counts, manifest


def test_layout_counts_and_manifest(synthetic_root: Path) -> None:
    m = load_manifest(synthetic_root)
    assert (m["seed"], m["size"], m["format"]) == (0, "test", "mast-bench-synthetic")
    assert set(m["tasks"]) == set(SYNTHETIC_TASKS) and len(SYNTHETIC_TASKS) >= 5
    for t in TASKS:
        entry = m["tasks"][t.name]
        assert entry["invariance"] == TASK_INVARIANCE[t.name] and entry["classes"] == sorted(t.classes)
        for split, n in zip(("train", "val", "test"), SZ.per_class):
            for c in t.classes:
                files = sorted((synthetic_root / "tasks" / t.key / split / c).glob("*.png"))
                assert len(files) == n == entry["counts"][split][c]
    assert len(list((synthetic_root / "pool").glob("*.png"))) == SZ.pool == m["pool"]["count"]
    assert len(FEWSHOT_CLASSES) >= 20 and sorted(p.name for p in (synthetic_root / "fewshot").iterdir()) == sorted(
        FEWSHOT_CLASSES
    )
    assert verify_suite(synthetic_root) == []  # every file on disk is in the manifest with its sha256
    sample = next((synthetic_root / "tasks" / "shape" / "train" / "circle").glob("*.png"))
    with Image.open(sample) as im:
        assert (im.format, im.mode, im.size) == ("PNG", "RGB", (32, 32))


def test_same_seed_is_byte_identical_and_other_seed_differs(synthetic_root: Path, tmp_path: Path) -> None:
    again = make_synthetic(tmp_path / "again", seed=0, size="test")
    other = make_synthetic(tmp_path / "other", seed=1, size="test")
    assert (tmp_path / "again" / "manifest.json").read_bytes() == (synthetic_root / "manifest.json").read_bytes()
    # the manifest's checksums are the files' real checksums
    assert all(sha256_file(tmp_path / "again" / rel) == digest for rel, digest in again["files"].items())
    assert again["files"].keys() == other["files"].keys()
    same = [rel for rel in again["files"] if again["files"][rel] == other["files"][rel]]
    assert same == []


def test_tampered_or_extra_files_are_reported(synthetic_root: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(synthetic_root, tmp_path / "copy"))
    victim = root / "tasks" / "colour" / "val" / "red" / "000000.png"
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    (root / "pool" / "zz.png").write_bytes(b"x")
    (root / "fewshot" / "circle-red" / "000001.png").unlink()
    assert verify_suite(root) == [
        "missing file fewshot/circle-red/000001.png",
        "checksum mismatch for tasks/colour/val/red/000000.png",
        "unexpected file pool/zz.png",
    ]


# ---------------------------------------------------------------- labels are right


def test_images_are_their_factor_records_rendered(synthetic_root: Path) -> None:
    rows = read_factors(synthetic_root)
    n_tasks = sum(len(t.classes) for t in TASKS) * sum(SZ.per_class)
    assert len(rows) == SZ.pool + n_tasks + len(FEWSHOT_CLASSES) * SZ.fewshot_per_class
    for r in rows:
        bg, obj = factors_from_row(r)
        np.testing.assert_array_equal(_rgb(synthetic_root / r["path"]), render(bg, [obj], 32)[0], err_msg=r["path"])


def test_label_folders_match_factor_records(synthetic_root: Path) -> None:
    for r in read_factors(synthetic_root):
        bg, obj = factors_from_row(r)
        parts = r["path"].split("/")
        if parts[0] == "tasks":
            key, label = parts[1], parts[3]
            assert r["label"] == label
            if key == "shape":
                assert obj.shape == label
            elif key == "colour":
                assert _hue_dist(obj.hue, HUE_BINS[label]) <= HUE_JITTER
            elif key == "orientation":
                assert obj.shape == ORIENTATION_SHAPE and obj.mirror == label.startswith("m")
                assert _hue_dist(obj.angle, float(label[1:])) <= ORIENT_JITTER  # same circular distance
            elif key == "position":
                lo, hi = position_band(label)
                assert lo <= obj.cy <= hi
            else:
                assert bg.texture == label
        elif parts[0] == "fewshot":
            shape, colour = parts[1].split("-")
            assert obj.shape == shape and _hue_dist(obj.hue, HUE_BINS[colour]) <= HUE_JITTER


def test_colour_class_matches_mean_hue_of_object_pixels(synthetic_root: Path) -> None:
    centres = np.array(list(HUE_BINS.values()))
    for r in _task_rows(synthetic_root, "colour"):
        _, obj = factors_from_row(r)
        inside = object_alpha(obj, 32) == 1.0  # pixels fully covered by the object
        hsv = rgb_to_hsv(_rgb(synthetic_root / r["path"])[inside] / 255.0)
        angle = np.deg2rad(hsv[:, 0] * 360.0)
        mean_hue = np.rad2deg(np.arctan2(np.sin(angle).mean(), np.cos(angle).mean())) % 360.0
        nearest = list(HUE_BINS)[int(np.argmin(_hue_dist(centres, mean_hue)))]
        assert inside.sum() > 10 and nearest == r["label"], r["path"]


def test_position_class_holds_the_object_centroid(synthetic_root: Path) -> None:
    for r in _task_rows(synthetic_root, "position"):
        bg, _ = factors_from_row(r)
        # the object as the image shows it: where it differs from its background
        diff = np.abs(_rgb(synthetic_root / r["path"]).astype(int) - render(bg, [], 32)[0].astype(int)).max(axis=2)
        ys, _ = np.nonzero(diff > 8)
        k = ["top", "middle", "bottom"].index(r["label"])
        assert k * 32 / 3 <= ys.mean() + 0.5 < (k + 1) * 32 / 3, r["path"]


def test_orientation_classes_are_rotations_and_mirrors() -> None:
    base = ObjectFactors("L", 0.0, 1.0, 1.0, size=11.0, cx=16.0, cy=16.0, angle=0.0, mirror=False)

    def close(a: np.ndarray, b: np.ndarray) -> bool:
        return float(np.abs(a - b).mean()) < 0.01

    a0 = object_alpha(base, 32)
    assert close(object_alpha(replace(base, angle=90.0), 32), np.rot90(a0))  # r090 = r000 turned CCW
    assert close(object_alpha(replace(base, angle=180.0), 32), np.rot90(a0, 2))
    assert close(object_alpha(replace(base, mirror=True), 32), np.fliplr(a0))  # m000 = r000 mirrored
    # a horizontal flip turns r090 into m270: flip invariance merges those two classes
    assert close(np.fliplr(object_alpha(replace(base, angle=90.0), 32)),
                 object_alpha(replace(base, angle=270.0, mirror=True), 32))  # fmt: skip
    # and L has no symmetry, so the 8 classes are 8 different pictures
    masks = [object_alpha(replace(base, angle=90.0 * k, mirror=m), 32) for m in (False, True) for k in range(4)]
    assert min(np.abs(masks[i] - masks[j]).mean() for i in range(8) for j in range(i)) > 0.05


def test_texture_is_fine_scale_and_blur_destroys_it(synthetic_root: Path) -> None:
    def energy(img: Image.Image, bgmask: np.ndarray) -> float:
        return float(np.abs(ndimage.laplace(np.asarray(img.convert("L"), dtype=float)))[bgmask].mean())

    for r in _task_rows(synthetic_root, "texture"):
        _, obj = factors_from_row(r)
        bgmask = ndimage.binary_erosion(object_alpha(obj, 32) == 0, iterations=2, border_value=0)
        with Image.open(synthetic_root / r["path"]) as im:
            sharp, blurred = energy(im, bgmask), energy(im.filter(ImageFilter.GaussianBlur(1.5)), bgmask)
        if r["label"] == "smooth":
            assert sharp < 3.0, r["path"]
        else:
            assert sharp > 8.0 and blurred < 0.25 * sharp, r["path"]


# ---------------------------------------------------------------- scenes in COCO format


def test_scenes_are_valid_coco(synthetic_root: Path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    for split, n in zip(("train", "val"), SZ.scenes):
        ann_file = synthetic_root / "scenes" / "annotations" / f"instances_{split}.json"
        coco = COCO(str(ann_file))
        assert len(coco.getImgIds()) == n and [c["name"] for c in coco.loadCats(coco.getCatIds())][:3] == [
            "circle", "triangle", "square",
        ]  # fmt: skip
        for img in coco.loadImgs(coco.getImgIds()):
            assert _rgb(synthetic_root / "scenes" / split / img["file_name"]).shape == (64, 64, 3)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
            assert 1 <= len(anns) <= 4
            masks = [coco.annToMask(a) for a in anns]
            assert sum(m.astype(int) for m in masks).max() == 1  # instances do not overlap
            for a, m in zip(anns, masks):
                assert a["iscrowd"] == 0 and m.sum() == a["area"] > 0
                ys, xs = np.nonzero(m)
                x, y, w, h = a["bbox"]
                assert x - 1 <= xs.min() and xs.max() <= x + w and y - 1 <= ys.min() and ys.max() <= y + h
        # ground truth scored as detections gives AP = 1 for boxes and masks: the file is fully consumable
        dets = [{**a, "score": 1.0} for a in coco.dataset["annotations"]]
        for iou_type in ("bbox", "segm"):
            ev = COCOeval(coco, coco.loadRes(json.loads(json.dumps(dets))), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            assert ev.stats[0] == pytest.approx(1.0)


@pytest.mark.detectron2
def test_detectron2_reads_the_scenes(synthetic_root: Path) -> None:
    datasets = pytest.importorskip("detectron2.data.datasets")
    from mast_bench.data.synthetic.datasets import scenes_paths

    ann_file, image_root = scenes_paths(synthetic_root, "val")
    dicts = datasets.load_coco_json(str(ann_file), str(image_root), "synthetic-scenes-val-test")
    coco = json.loads(ann_file.read_text())
    assert len(dicts) == SZ.scenes[1] and sum(len(d["annotations"]) for d in dicts) == len(coco["annotations"])
    first = dicts[0]["annotations"][0]
    assert (
        first["bbox"] == coco["annotations"][0]["bbox"]
        and first["category_id"] == coco["annotations"][0]["category_id"] - 1
    )  # detectron2 maps COCO ids 1..8 to contiguous 0..7


def test_scenes_paths_errors(synthetic_root: Path, tmp_path: Path) -> None:
    from mast_bench.data.synthetic.datasets import scenes_paths

    with pytest.raises(DatasetError, match=r"synthetic scenes have no split 'test'; splits: \['train', 'val'\]"):
        scenes_paths(synthetic_root, "test")
    with pytest.raises(DatasetError, match=r"instances_val.json' not found \(expected layout: <root>/scenes/"):
        scenes_paths(tmp_path, "val")


# ---------------------------------------------------------------- registered loaders


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_task_loaders_read_the_suite(synthetic_root: Path, task) -> None:
    info = DATASETS.get(task.name)
    assert (info.num_classes, info.metric, info.val_source) == (len(task.classes), "top1", "official")
    for split, n in zip(("train", "val", "test"), SZ.per_class):
        ds = info.build(synthetic_root, split)
        assert ds.classes == sorted(task.classes) and len(ds) == n * len(task.classes)
        img, target = ds[len(ds) - 1]
        assert img.size == (32, 32) and ds.classes[target] == ds.samples[-1][0].parent.name


def test_pool_and_fewshot_loaders(synthetic_root: Path) -> None:
    pool = DATASETS.get("synthetic-pool").build(synthetic_root, "train")
    assert len(pool) == SZ.pool and pool[0][1] == -1
    few = DATASETS.get("synthetic-fewshot").build(synthetic_root, "all")
    assert few.classes == sorted(FEWSHOT_CLASSES) and len(few) == len(FEWSHOT_CLASSES) * SZ.fewshot_per_class


@pytest.fixture()
def suite_copy(synthetic_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synthetic_root, tmp_path / "suite"))


def test_missing_manifest_is_a_dataset_error(suite_copy: Path) -> None:
    (suite_copy / "manifest.json").unlink()
    with pytest.raises(DatasetError, match=r"no synthetic suite manifest at .*manifest.json'; the suite is missing"):
        DATASETS.get("synthetic-shape").build(suite_copy, "train")
    unverified = DATASETS.get("synthetic-shape").build(suite_copy, "train", verify=False)
    assert len(unverified) == len(SHAPE_CLASSES) * SZ.per_class[0]


def test_missing_split_folder_names_the_layout(suite_copy: Path) -> None:
    shutil.rmtree(suite_copy / "tasks" / "texture" / "val")
    with pytest.raises(DatasetError) as exc:
        DATASETS.get("synthetic-texture").build(suite_copy, "val")
    assert f"image folder {str(suite_copy / 'tasks' / 'texture' / 'val')!r} does not exist" in str(exc.value)
    assert "(expected layout: <root>/tasks/texture/{train,val,test}/<class>/*.png with classes checker, dots" in str(
        exc.value
    )


def test_empty_class_folder_and_wrong_counts(suite_copy: Path) -> None:
    red = suite_copy / "tasks" / "colour" / "train" / "red"
    for f in red.iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"class folder '.*/red' holds no images \(.png, .jpg"):
        DATASETS.get("synthetic-colour").build(suite_copy, "train")
    (suite_copy / "tasks" / "position" / "test" / "top" / "000003.png").unlink()
    with pytest.raises(DatasetError, match=r"does not match the suite manifest \(top: 5 images, manifest lists 6\)"):
        DATASETS.get("synthetic-position").build(suite_copy, "test")


def test_malformed_manifest(suite_copy: Path) -> None:
    (suite_copy / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"manifest .* is unreadable"):
        load_manifest(suite_copy)
    (suite_copy / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DatasetError, match="is not a synthetic suite manifest"):
        DATASETS.get("synthetic-pool").build(suite_copy, "train")


@pytest.mark.parametrize("found", [GENERATOR_VERSION - 1, GENERATOR_VERSION + 1])
def test_suite_of_another_generator_version_is_refused(suite_copy: Path, found: int) -> None:
    manifest = json.loads((suite_copy / "manifest.json").read_text())
    manifest["generator_version"] = found
    (suite_copy / "manifest.json").write_text(json.dumps(manifest))
    before = {p: p.read_bytes() for p in suite_copy.rglob("*") if p.is_file()}
    command = f"mast-bench datasets make-synthetic --out {suite_copy} --seed 0 --size test --overwrite"
    fix = f"regenerate it: `{command}`" if found < GENERATOR_VERSION else (
        f"upgrade mast-bench, or regenerate it with this version: `{command}`"
    )
    expected = (
        f"synthetic suite at {str(suite_copy)!r} was written by generator version {found}, but this mast-bench "
        f"reads only version {GENERATOR_VERSION}; {fix}"
    )
    for name in ("synthetic-shape", "synthetic-pool", "synthetic-fewshot"):
        split = {"synthetic-shape": "train", "synthetic-pool": "train", "synthetic-fewshot": "all"}[name]
        for verify in (True, False):  # a manifest that names another version is refused even unverified
            with pytest.raises(DatasetError) as exc:
                DATASETS.get(name).build(suite_copy, split, verify=verify)
            assert str(exc.value) == expected
    with pytest.raises(DatasetError) as exc:
        verify_suite(suite_copy)
    assert str(exc.value) == expected
    assert {p: p.read_bytes() for p in suite_copy.rglob("*") if p.is_file()} == before  # nothing touched


def test_old_suite_refused_by_the_cli_and_regenerated_by_the_named_command(suite_copy: Path) -> None:
    from click.testing import CliRunner

    from mast_bench.cli import main

    manifest = json.loads((suite_copy / "manifest.json").read_text())
    manifest["generator_version"] = GENERATOR_VERSION - 1
    (suite_copy / "manifest.json").write_text(json.dumps(manifest))
    res = CliRunner().invoke(main, ["datasets", "check", "synthetic-shape", "--data-root", str(suite_copy)])
    assert res.exit_code != 0
    assert f"was written by generator version {GENERATOR_VERSION - 1}, but this mast-bench reads only" in res.output
    command = f"mast-bench datasets make-synthetic --out {suite_copy} --seed 0 --size test --overwrite"
    assert command in res.output
    res = CliRunner().invoke(main, command.split()[1:])
    assert res.exit_code == 0, res.output
    assert load_manifest(suite_copy)["generator_version"] == GENERATOR_VERSION and verify_suite(suite_copy) == []


# ---------------------------------------------------------------- writing: refusal, overwrite, interruption


def test_refuses_a_folder_with_other_content(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError) as exc:
        make_synthetic(out, size="test")
    assert str(exc.value) == (
        f"output folder {str(out)!r} already exists and holds other files (notes.txt); "
        "choose another --out or pass --overwrite"
    )
    assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"


def test_unwritable_destination(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputDirError, match=r"cannot create output folder '.*/file/suite': Not a directory"):
        make_synthetic(blocker / "suite", size="test")
    assert blocker.read_text() == "x"
    if os.geteuid() != 0:  # root ignores permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputDirError, match="is not writable"):
            make_synthetic(locked, size="test")
        assert os.listdir(locked) == []


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown synthetic suite size 'huge'; valid sizes: test, quick, demo"):
        make_synthetic("/nonexistent", size="huge")
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        make_synthetic("/nonexistent", seed=-1, size="test")
    assert not Path("/nonexistent").exists()


def test_overwrite_replaces_the_suite_and_keeps_other_files(synthetic_root: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(synthetic_root, tmp_path / "suite"))
    (root / "README.txt").write_text("keep me")
    stale = root / "tasks" / "shape" / "train" / "circle" / "stale.png"
    shutil.copy(root / "pool" / "000000.png", stale)
    make_synthetic(root, seed=3, size="test", overwrite=True)
    assert load_manifest(root)["seed"] == 3 and verify_suite(root) == []
    assert (root / "README.txt").read_text() == "keep me" and not stale.exists()
    assert not list(root.glob(".synthetic-staging-*"))


def test_interrupted_generation_leaves_the_previous_suite(
    synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(shutil.copytree(synthetic_root, tmp_path / "suite"))
    before = (root / "manifest.json").read_bytes()
    real, calls = synthetic._png_bytes, []

    def flaky(img: np.ndarray) -> bytes:
        calls.append(1)
        if len(calls) == 100:
            raise KeyboardInterrupt
        return real(img)

    monkeypatch.setattr(synthetic, "_png_bytes", flaky)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic(root, seed=5, size="test", overwrite=True)
    assert (root / "manifest.json").read_bytes() == before and verify_suite(root) == []
    assert not list(root.glob(".synthetic-staging-*"))


def test_cli_make_synthetic(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mast_bench.cli import main

    out = tmp_path / "cli"
    res = CliRunner().invoke(main, ["datasets", "make-synthetic", "--out", str(out), "--size", "test", "--seed", "2"])
    assert res.exit_code == 0, res.output
    assert f"wrote synthetic suite (test, seed 2) to {out}" in res.output and load_manifest(out)["seed"] == 2
    res = CliRunner().invoke(main, ["datasets", "make-synthetic", "--out", str(out), "--size", "test"])
    assert res.exit_code == 2 and "already exists and holds other files" in res.output


def test_sample_grid_picture(synthetic_root: Path, tmp_path: Path) -> None:
    from mast_bench.data.synthetic.figure import render_sample_grid

    out = render_sample_grid(synthetic_root, tmp_path / "grid.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 600 and im.size[1] > 800


# ---------------------------------------------------------------- supervised reference


def test_pool_labels_follow_the_factors() -> None:
    from mast_bench.data.synthetic.supervised import IGNORE, pool_labels

    base = {"hue": "0.0", "cy": "1.0", "bg_texture": "smooth", "angle": "0.0", "mirror": "False"}
    rows = [
        {**base, "shape": "circle", "hue": "350.0", "cy": "31.0", "bg_texture": "dots"},
        {**base, "shape": "L", "hue": "95.0", "cy": "16.0", "angle": "268.0", "mirror": "True"},
        {**base, "shape": "F", "hue": "181.0", "cy": "10.6", "angle": "44.0"},
    ]
    got = {k: v.tolist() for k, v in pool_labels(rows).items()}
    assert got == {
        "shape": [0, 6, 7],
        "colour": [0, 2, 3],  # 350° → red, 95° → green (nearest of 60° and 120°), 181° → cyan
        "position": [2, 1, 0],
        "texture": [3, 0, 0],
        "pose": [IGNORE, 3 + 4, 0],  # 268° rounds to r270, mirrored → m270 (index 7)
    }


def test_supervised_reference_is_cached_and_reloaded_exactly(synthetic_root: Path, tmp_path: Path) -> None:
    import torch

    from mast_bench.data.synthetic.supervised import SupervisedSettings, cached_reference
    from mast_bench.models.backbones import BackboneSpec, build_backbone

    spec = BackboneSpec("resnet_tiny", stem="small", widths=(4, 8, 8, 8))
    settings = SupervisedSettings(epochs=1, batch_size=16)
    first, path, hit = cached_reference(synthetic_root, spec, tmp_path / "cache", settings)
    assert not hit and path.is_file() and path.with_suffix(".json").is_file()
    second, path2, hit2 = cached_reference(synthetic_root, spec, tmp_path / "cache", settings)
    assert hit2 and path2 == path
    for (k, a), (k2, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    torch.manual_seed(settings.seed)  # the initialisation training started from
    init = build_backbone(spec)[0].state_dict()
    assert any(not torch.equal(init[k], v) for k, v in first.state_dict().items() if k.endswith("weight"))
    longer = SupervisedSettings(epochs=2, batch_size=16)
    _, path3, hit3 = cached_reference(synthetic_root, spec, tmp_path / "cache", longer)
    assert not hit3 and path3 != path  # other settings: another cache entry
