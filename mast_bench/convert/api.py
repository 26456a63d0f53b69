"""Library entry points: convert a checkpoint to files, or load it as an evaluation-ready backbone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from mast_bench.checkpoints import safe_load
from mast_bench.convert.cache import default_cache_dir, entry_path, read_entry
from mast_bench.convert.detect import parse_format, resolve_format
from mast_bench.convert.detectron2_writer import partial_load_warning, write_detectron2
from mast_bench.convert.formats import Found
from mast_bench.convert.layout import ARCHITECTURES, build_target, describe, infer_spec, refuse_vit
from mast_bench.convert.mapping import map_backbone
from mast_bench.convert.outputs import check_output
from mast_bench.convert.report import ConversionReport, Converted
from mast_bench.convert.torchvision_writer import SUFFIXES, write_torchvision
from mast_bench.errors import CheckpointError
from mast_bench.fileio import OutputDirError, sha256_file
from mast_bench.models.backbones import BackboneSpec
from mast_bench.registry import UnknownNameError

TARGETS = ("torchvision", "detectron2")


def _choose_spec(found: Found, arch: str | None) -> BackboneSpec:
    inferred = infer_spec(found.trunk, found.evidence)
    claims = [
        ("the checkpoint's metadata", found.spec.name if found.spec else None),
        ("the checkpoint's 'arch' entry", found.arch_hint),
        ("this format", found.required_arch),
        ("--arch", arch),
    ]
    for who, name in claims:
        if name and name != inferred.name:
            raise CheckpointError(f"{who} says {name}, but the weights describe {describe(inferred)}")
    if found.spec is None:
        return inferred
    if (found.spec.stem, tuple(found.spec.widths)) != (inferred.stem, inferred.widths):
        raise CheckpointError(
            f"the checkpoint's metadata describes {describe(found.spec)}, but the weights describe {describe(inferred)}"
        )
    return found.spec


def convert_source(path: str | Path, from_format: str = "auto", arch: str | None = None) -> Converted:
    """Read a checkpoint safely and convert its backbone to a torchvision-style state dict in memory.

    Args:
        path: the source checkpoint.
        from_format: one of ``SOURCE_FORMATS`` (``lightning:PREFIX`` names a prefix).
        arch: expected architecture; an error if the weights describe another.

    Raises:
        CheckpointError: unsafe, unreadable, foreign, ambiguous or mismatched checkpoints.
        UnknownNameError: an unknown format or architecture name.
    """
    if arch is not None and arch not in ARCHITECTURES:
        raise UnknownNameError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")
    parse_format(from_format)  # an unknown name fails before a large file is read
    loaded = safe_load(path)
    refuse_vit(loaded.obj)
    fmt, option, detection = resolve_format(loaded.obj, from_format)
    found = fmt.extract(loaded.obj, option)
    spec = _choose_spec(found, arch)
    m = map_backbone(found, spec)
    notes = list(m.notes)
    if found.spec is None:
        notes.append(f"normalisation: ImageNet mean/std, the {fmt.name} convention (not recorded in the file)")
    report = ConversionReport(
        source_format=fmt.name,
        detection=detection,
        source_sha256=loaded.sha256,
        spec=spec,
        mapped=m.mapped,
        dropped=m.dropped,
        filled=m.filled,
        notes=notes,
        location=found.evidence,
        method=found.method,
    )
    size = found.input_size or (224 if spec.stem == "imagenet" else 32)
    return Converted(state_dict=m.state_dict, spec=spec, report=report, input_size=size, source=str(path))


@dataclass
class ConvertResult:
    """What ``convert_checkpoint`` did: the report, the files it wrote (weights first) and warnings to show."""

    report: ConversionReport
    files: list[Path]
    warnings: list[str] = field(default_factory=list)


def convert_checkpoint(
    path: str | Path,
    to: str,
    out: str | Path,
    from_format: str = "auto",
    arch: str | None = None,
    overwrite: bool = False,
    allow_partial: bool = False,
) -> ConvertResult:
    """Convert a checkpoint's backbone and write it for torchvision or Detectron2.

    Args:
        path: source checkpoint.
        to: ``"torchvision"`` (``out`` .pth/.pt + .json) or ``"detectron2"`` (``out`` .pkl + .yaml + .json).
        out: the weights file to write; companions go next to it.
        from_format: source format or ``"auto"``.
        arch: expected architecture (checked).
        overwrite: replace existing outputs; otherwise they are refused before any work.
        allow_partial: write Detectron2 weights that a stock model would load only in part (e.g. a small
            stem); without it such a conversion is refused, with it the result carries a warning.
    """
    if to not in TARGETS:
        raise UnknownNameError(f"unknown conversion target {to!r}; valid: {', '.join(TARGETS)}")
    # Refuse an existing output before reading a (possibly large) checkpoint.
    if to == "torchvision":
        check_output(out, SUFFIXES, (".json",), overwrite)
    else:
        check_output(out, (".pkl",), (".yaml", ".json"), overwrite)
    conv = convert_source(path, from_format, arch)
    if to == "torchvision":
        return ConvertResult(report=conv.report, files=write_torchvision(out, conv, overwrite=overwrite))
    files = write_detectron2(out, conv, overwrite=overwrite, allow_partial=allow_partial)
    partial = partial_load_warning(conv)
    warnings = [f"{partial}; written anyway (--allow-partial)"] if partial else []
    return ConvertResult(report=conv.report, files=files, warnings=warnings)


@dataclass
class LoadedBackbone:
    """A backbone ready for evaluation.

    Attributes:
        model: ``nn.Module`` in eval mode mapping ``(N, 3, H, W)`` images to pooled features ``(N, D)``.
        spec: architecture and normalisation (``spec.mean``/``spec.std`` for RGB in [0, 1]).
        source_sha256: sha256 of the weights file ("" for an in-memory model).
        source_format: the format read ("in-memory" for :meth:`from_module`).
        report: mapped / dropped keys of the conversion.
        name: display name (the file's stem, or the name given to :meth:`from_module`).
        input_size: image side the weights were trained for.
        from_cache: whether the conversion came from the cache.
    """

    model: nn.Module
    spec: BackboneSpec
    source_sha256: str
    source_format: str
    report: ConversionReport
    name: str = ""
    input_size: int = 224
    from_cache: bool = False
    path: Path | None = field(default=None)

    @classmethod
    def from_module(
        cls, module: nn.Module, spec: BackboneSpec, name: str, input_size: int | None = None
    ) -> LoadedBackbone:
        """Wrap an in-memory model (e.g. a random-init floor); it is put in eval mode."""
        report = ConversionReport(
            source_format="in-memory",
            detection="built in memory",
            source_sha256="",
            spec=spec,
            notes=["in-memory model: no weights file"],
        )
        size = input_size or (224 if spec.stem == "imagenet" else 32)
        return cls(module.eval(), spec, "", "in-memory", report, name=name, input_size=size)


def load_backbone(
    path: str | Path, from_format: str = "auto", arch: str | None = None, cache_dir: str | Path | None = None
) -> LoadedBackbone:
    """Load any supported checkpoint as an eval-mode backbone, converting on the fly with a cache.

    Args:
        path: a checkpoint in any ``--from`` format.
        from_format: as for ``mast-bench convert --from``.
        arch: expected architecture (checked).
        cache_dir: where converted weights are kept (default: ``$MAST_BENCH_CACHE/weights`` or
            ``~/.cache/mast-bench/weights``); entries are keyed by the source file's sha256.
    """
    parse_format(from_format)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"weights file not found: {str(p)!r}")
    digest = sha256_file(p)
    cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = entry_path(cdir, digest, from_format, arch)
    hit = read_entry(entry)
    if hit is not None and "method" not in hit[1].get("report", {}):
        hit = None  # written before reports carried the method: convert again so records can name it
    if hit is not None:
        state, meta = hit
        report = ConversionReport.from_dict(meta["report"])
        size = int(meta["input_size"])
    else:
        conv = convert_source(p, from_format, arch)
        try:
            write_torchvision(entry, conv, overwrite=True)
        except OSError as exc:
            raise OutputDirError(
                f"cannot write the weights cache {str(cdir)!r}: {exc}; set cache_dir or "
                "MAST_BENCH_CACHE to a writable folder"
            ) from None
        state, report, size = conv.state_dict, conv.report, conv.input_size
    with torch.device("meta"):  # no random init: every tensor comes from ``state``
        model = build_target(report.spec)
    model.load_state_dict(state, strict=True, assign=True)
    return LoadedBackbone(
        model=model.eval(),
        spec=report.spec,
        source_sha256=report.source_sha256,
        source_format=report.source_format,
        report=report,
        name=p.stem,
        input_size=size,
        from_cache=hit is not None,
        path=p,
    )
