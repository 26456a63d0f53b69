"""The account of a conversion: every source key is mapped or dropped, and why."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mast_bench.models.backbones import BackboneSpec


@dataclass
class ConversionReport:
    """What a conversion read, kept and left out.

    Source keys are labelled by where they sit in the checkpoint: nested containers are joined
    with ``/`` (``state_dict/module.encoder_q.conv1.weight``); an entry dropped as a whole
    (``optimizer``) is listed once under its own label.

    Attributes:
        source_format: the format used (after ``auto`` detection), e.g. ``"moco"``.
        detection: how the format was chosen (``"given with --from"`` or the evidence auto found).
        source_sha256: sha256 of the source file ("" for in-memory models).
        spec: the backbone the weights describe.
        mapped: source label → torchvision-style target key.
        dropped: source label → reason it is left out on purpose.
        filled: target keys absent from the source and set to their neutral value (BN step counters).
        notes: anything else a user should know (dtype casts, normalisation assumed).
        location: where in the checkpoint the backbone was found.
        method: the pretraining method the checkpoint records ("" when it records none).
    """

    source_format: str
    detection: str
    source_sha256: str
    spec: BackboneSpec
    mapped: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    filled: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    location: str = ""
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_format": self.source_format,
            "detection": self.detection,
            "source_sha256": self.source_sha256,
            "backbone": self.spec.to_dict(),
            "mapped": dict(self.mapped),
            "dropped": dict(self.dropped),
            "filled": list(self.filled),
            "notes": list(self.notes),
            "location": self.location,
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConversionReport:
        return cls(
            source_format=str(d["source_format"]),
            detection=str(d["detection"]),
            source_sha256=str(d["source_sha256"]),
            spec=BackboneSpec.from_dict(d["backbone"]),
            mapped={str(k): str(v) for k, v in d["mapped"].items()},
            dropped={str(k): str(v) for k, v in d["dropped"].items()},
            filled=[str(k) for k in d["filled"]],
            notes=[str(n) for n in d["notes"]],
            location=str(d.get("location", "")),
            method=str(d.get("method", "")),
        )

    def summary_lines(self, examples: int = 2) -> list[str]:
        """Human-readable summary: format, architecture, counts, and dropped keys grouped by reason."""
        s = self.spec
        lines = [
            f"format: {self.source_format} ({self.detection})",
            f"backbone: {self.location or 'n/a'}",
            f"architecture: {s.name} (stem {s.stem}, widths {'-'.join(str(w) for w in s.widths)})",
            f"mapped {len(self.mapped)} keys, dropped {len(self.dropped)}, filled {len(self.filled)}",
        ]
        by_reason: dict[str, list[str]] = {}
        for label, reason in self.dropped.items():
            by_reason.setdefault(reason, []).append(label)
        for reason, count in Counter(self.dropped.values()).most_common():
            shown = by_reason[reason][:examples]
            more = ", ..." if count > examples else ""
            lines.append(f"  dropped {count:>4} × {reason}: {', '.join(shown)}{more}")
        if self.filled:
            lines.append(f"  filled  {len(self.filled):>4} × BatchNorm step counters set to 0 (unused in eval)")
        lines += [f"note: {n}" for n in self.notes]
        return lines


@dataclass
class Converted:
    """A conversion held in memory, ready for a writer.

    Attributes:
        state_dict: torchvision-style backbone state dict (loads ``strict=True`` into the target model).
        spec: the backbone it describes (architecture, stem, widths, normalisation).
        report: the key accounting.
        input_size: image side the weights were trained for (224 for ImageNet-trained formats).
        source: path of the source checkpoint.
    """

    state_dict: dict[str, Any]
    spec: BackboneSpec
    report: ConversionReport
    input_size: int
    source: str
