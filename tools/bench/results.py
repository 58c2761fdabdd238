"""What the benchmark measures, as plain data: the report the tables are rendered from and `--json` writes."""

from __future__ import annotations

from dataclasses import dataclass, field

# The structure-test config the touch phase appends a newline to, and the build table names.
TOUCHED_CONFIG = "tests/root.yaml"
# The roots measured are "ours", "peer" and "ours-no-pyc"; sizes also have the peer as a slim image holds it.
PEER_SLIM = "peer-slim"


@dataclass
class Machine:
    date: str
    arch: str
    cpus: int
    memory_bytes: int
    commit: str


@dataclass
class FilesystemSize:
    """The filesystem as one deterministic tar, and that tar compressed."""

    tar: int
    gzip: int
    zstd: int
    files: int


@dataclass
class LayerSize:
    name: str
    digest: str
    compressed: int
    uncompressed: int


@dataclass
class Pruning:
    before_compressed: int
    after_compressed: int
    before_uncompressed: int
    after_uncompressed: int
    removed: list[str]  # topmost removed paths
    layer: str = ""  # the pruned layer's target name; its unpruned input is <layer>_debs


@dataclass
class Startup:
    samples_ms: list[float]
    median_ms: float
    p90_ms: float


@dataclass
class ProcessSummary:
    """Bazel's 'INFO: N processes: X disk cache hit, Y internal, Z linux-sandbox.' line."""

    total: int
    kinds: dict[str, int]


@dataclass
class Builds:
    clean_seconds: float | None = None
    clean_processes: ProcessSummary | None = None
    noop_seconds: float | None = None
    touch_seconds: float | None = None
    touch_targets: list[str] = field(default_factory=list)
    touch_actions: list[str] = field(default_factory=list)
    touch_image_actions: list[str] = field(default_factory=list)
    lock_seconds: float | None = None
    lock_unchanged: bool | None = None
    lock_matches_head: bool | None = None  # `git diff` of the lock is empty after the lock tool ran


@dataclass
class Cache:
    fill: ProcessSummary
    second: ProcessSummary
    hits: int
    non_internal: int
    ratio: float | None


@dataclass
class Repro:
    first_workspace: str
    first_digest: str
    second_workspace: str
    second_digest: str
    third_digest: str | None  # the cache-hit build, same workspace as the second
    overlaid_files: int  # uncommitted files copied onto the clone of HEAD


@dataclass
class Goal:
    name: str
    target: str
    value: str
    met: bool | None  # None: not measured


@dataclass
class ImageSize:
    target: str
    python: str
    architecture: str
    compressed: int  # the OCI layers as pushed (gzip)
    uncompressed: int


@dataclass
class SourceCost:
    source: str
    bytes: int  # compressed bytes re-pulled when only this source changes
    layers: list[str]


@dataclass
class UpdateCost:
    image: str
    layering: str  # PER_SOURCE, or the baseline's PER_GROUP
    layer_count: int
    cold_pull: int  # every layer, compressed
    sources: list[SourceCost]
    median: float
    mean: float
    max: int


# The layerings the update costs compare: the images', and the one-layer-per-group baseline.
PER_SOURCE = "one layer per source"
PER_GROUP = "one layer per group"


@dataclass
class VariantLayers:
    """Whether the layers of one name are the same blob in every variant of an image."""

    image: str
    variants: list[str]
    shared: int  # layer names in more than one variant
    most_layers: int  # the layer count of the variant with the most
    differing: list[str]  # of those, the ones whose digests differ


@dataclass
class Report:
    machine: Machine
    runs: int
    python_versions: dict[str, str]
    sizes: dict[str, FilesystemSize]
    layers: list[LayerSize]
    pruning: Pruning | None
    startup: dict[str, Startup]
    builds: Builds
    cache: Cache | None
    repro: Repro | None
    images: list[ImageSize] = field(default_factory=list)
    update_costs: list[UpdateCost] = field(default_factory=list)
    variant_layers: list[VariantLayers] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    not_measured: list[str] = field(default_factory=list)
