"""Publishing a dataset folder to the Hugging Face Hub (docs/ecosystem.md).

:func:`plan_publish` validates the folder with no network access: ``memgen verify`` (every
checksum), the card's YAML as the Hub reads it (``huggingface_hub.DatasetCard``, then the
``configs:`` and ``dataset_info`` blocks as ``datasets`` reads them), and every config loaded
with ``datasets.load_dataset(DIR, config)`` (streamed: the first row of every split is read,
so nothing is copied into the cache).  It returns the exact files to upload with their sizes
and sha256.  :func:`upload` then creates the dataset repo (if needed) and uploads those files
in one commit, with the token ``huggingface_hub`` finds (``HF_TOKEN`` or ``hf auth login``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from memgen.format.errors import DataError, MemgenError, UsageError
from memgen.format.names import escaped, printable
from memgen.io.atomic import sha256_file
from memgen.io.dataset import CARD, MANIFEST, Dataset, open_verified


@dataclass(frozen=True)
class UploadFile:
    """One file of the upload: its path inside the repo, size in bytes and sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class CardConfig:
    """One entry of the card's ``configs:``: name, split -> data_files patterns, rows per split."""

    name: str
    data_files: dict[str, list[str]]
    rows: dict[str, int]


@dataclass
class PublishPlan:
    """What ``memgen publish`` would upload, and where."""

    root: Path
    repo_id: str
    private: bool
    files: list[UploadFile] = field(default_factory=list)
    configs: list[CardConfig] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://huggingface.co/datasets/{self.repo_id}"

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def describe(self) -> list[str]:
        """The dry-run report, one line each: destination, the card's configs, then every file
        as ``sha256  bytes  path`` (``sha256sum``'s order, with the size between)."""
        lines = [f"dry run: nothing uploaded; would publish {self.root} to {self.url} "
                 f"({'private' if self.private else 'public'})",
                 f"configs in {CARD} ({len(self.configs)}):"]
        for c in self.configs:
            for split, patterns in c.data_files.items():
                rows = c.rows.get(split)
                lines.append(escaped(f"  {c.name}  split {split}: {', '.join(map(str, patterns))}")
                             + (f"  ({rows:,} rows)" if rows is not None else ""))
        lines.append(f"files ({len(self.files)}, {self.total_bytes:,} bytes):")
        lines.extend(f"  {f.sha256}  {f.size:>12,}  {f.path}" for f in self.files)
        return lines


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a valid ``ORG/NAME`` dataset repo id; UsageError saying why not."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if repo_id.count("/") != 1:
        raise UsageError(f"--repo-id {repo_id!r}: use ORG/NAME (e.g. my-lab/memgen-episodes)")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise UsageError(f"--repo-id {repo_id!r}: {str(e).splitlines()[0]}") from None
    return repo_id


def check_card(root: Path) -> list[CardConfig]:
    """The configs of the card ``root/README.md``, validated as the Hub and ``datasets`` read
    its YAML (offline).  Raises :class:`DataError` with one line saying what is wrong."""
    import yaml
    from huggingface_hub import DatasetCard

    path = root / CARD
    where = f"{path}: card YAML"
    try:
        card = DatasetCard(path.read_text(encoding="utf-8"))
    except (ValueError, yaml.YAMLError) as e:
        raise DataError(f"{where} is invalid: {_first_line(e)}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
    meta = card.data.to_dict()
    if not meta:
        raise DataError(f"{where} is missing (the card must start with a '---' YAML block)")
    for key, kind in (("license", str), ("pretty_name", str)):
        if key in meta and not isinstance(meta[key], (kind, list)):
            raise DataError(f"{where} is invalid: '{key}' must be a string")
    for key in ("tags", "task_categories", "language"):
        value = meta.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise DataError(f"{where} is invalid: '{key}' must be a list of strings")
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs

    try:
        configs = MetadataConfigs.from_dataset_card_data(card.data)
        infos = DatasetInfosDict.from_dataset_card_data(card.data)
    except (ValueError, TypeError, KeyError) as e:
        raise DataError(f"{where} is invalid: {_first_line(e)}") from None
    if not configs:
        raise DataError(f"{where} is invalid: no 'configs:' list")
    out = []
    for name, cfg in configs.items():
        files = cfg.get("data_files")
        if not files:
            raise DataError(f"{where} is invalid: config {name!r} has no data_files")
        by_split: dict[str, list[str]] = {}
        for entry in files if isinstance(files, list) else [files]:
            if isinstance(entry, dict) and "split" in entry and "path" in entry:
                paths = entry["path"]
                by_split[str(entry["split"])] = [paths] if isinstance(paths, str) else list(paths)
            else:
                raise DataError(f"{where} is invalid: config {name!r}: data_files entries need 'split' and 'path'")
        info = infos.get(name)
        rows = {s: int(v.num_examples) for s, v in (info.splits or {}).items()} if info and info.splits else {}
        out.append(CardConfig(name, by_split, rows))
    return out


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split("\n")[:1]).strip()
    return text or type(e).__name__


def check_data_files(root: Path, configs: list[CardConfig], ds: Dataset) -> None:
    """Each config's ``data_files`` patterns lie under ``data/`` (relative, no ``..``: the card is
    untrusted) and match exactly the shards the manifest lists for it (DataError naming the
    config and the pattern otherwise)."""
    for c in configs:
        matched: set[str] = set()
        for patterns in c.data_files.values():
            for pattern in patterns:
                parts = pattern.split("/") if isinstance(pattern, str) else []
                if len(parts) < 2 or parts[0] != "data" or any(p in ("", ".", "..") for p in parts):
                    raise DataError(f"{root / CARD}: config {printable(c.name)}: data_files {printable(pattern)} "
                                    "is not a relative pattern inside data/")
                hits = {p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file()}
                if not hits:
                    raise DataError(f"{root / CARD}: config {c.name!r}: data_files {pattern} match no file")
                matched |= hits
        if c.name in ds.configs:
            listed = {s["path"] for s in ds.config(c.name)["shards"]}
            if matched != listed:
                extra = sorted(matched ^ listed)[0]
                raise DataError(f"{root / CARD}: config {c.name!r}: data_files and the manifest's shards differ "
                                f"at {extra}")


def check_loadable(root: Path, configs: list[CardConfig]) -> None:
    """Load every split of every config with ``datasets.load_dataset(root, name)`` (streaming,
    first row) and check it has the card's columns.  DataError naming the config otherwise."""
    import datasets

    datasets.disable_progress_bars()
    for c in configs:
        for split in c.data_files:
            try:
                # an absolute path: a folder named json, csv, parquet or text is never taken for
                # the datasets builder of that name
                ds = datasets.load_dataset(str(root.resolve()), c.name, split=split, streaming=True)
                first = next(iter(ds), None)
            except Exception as e:  # datasets raises many types here; each becomes one line
                raise DataError(f"{root}: config {c.name!r} split {split!r} does not load with "
                                f"datasets.load_dataset ({type(e).__name__}: {_first_line(e)})") from None
            if c.rows.get(split, 1) > 0 and first is None:
                raise DataError(f"{root}: config {c.name!r} split {split!r} loads with no rows")
            if first is not None and "id" not in first:
                raise DataError(f"{root}: config {c.name!r} split {split!r} loads without an 'id' column")


def plan_publish(root: str | Path, repo_id: str, private: bool = False, load_check: bool = True) -> PublishPlan:
    """Validate the folder ``root`` for the Hub and list what would be uploaded (no network).

    Checks, in order: the repo id, ``memgen verify``, the card's YAML (:func:`check_card`), that
    each config's ``data_files`` match its shards (:func:`check_data_files`) and, with
    ``load_check``, that every config loads (:func:`check_loadable`).  The files are the
    card, the manifest and every shard the manifest lists, nothing else."""
    root = Path(root)
    check_repo_id(repo_id)
    ds = open_verified(root)
    configs = check_card(root)
    check_data_files(root, configs, ds)
    if load_check:
        check_loadable(root, configs)
    files = [UploadFile(name, (root / name).stat().st_size, sha256_file(root / name)) for name in (CARD, MANIFEST)]
    for name in ds.configs:
        for s in ds.config(name)["shards"]:
            files.append(UploadFile(s["path"], int(s["bytes"]), s["sha256"]))
    return PublishPlan(root=root, repo_id=repo_id, private=private, files=files, configs=configs)


def upload(plan: PublishPlan, token: str | None = None, commit_message: str | None = None) -> str:
    """Create the dataset repo ``plan.repo_id`` if it does not exist and upload exactly
    ``plan.files`` in one commit; returns the commit URL.  Every Hub or network failure becomes
    one :class:`MemgenError` line (no token, no access, offline mode, unreachable)."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import LocalTokenNotFoundError, OfflineModeIsEnabled

    if token is None and get_token() is None:
        raise UsageError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = HfApi(token=token)
    message = commit_message or f"memgen publish: {len(plan.configs)} configs, {len(plan.files)} files"
    try:
        api.create_repo(plan.repo_id, repo_type="dataset", private=plan.private, exist_ok=True)
        info = api.upload_folder(folder_path=str(plan.root), repo_id=plan.repo_id, repo_type="dataset",
                                 allow_patterns=[f.path for f in plan.files], commit_message=message)
    except LocalTokenNotFoundError:
        raise UsageError("no Hugging Face token: set HF_TOKEN or run `hf auth login`") from None
    except OfflineModeIsEnabled:
        raise UsageError("HF_HUB_OFFLINE is set: unset it to publish (or use --dry-run)") from None
    except Exception as e:  # the network boundary: HTTP, connection and auth errors alike
        raise MemgenError(f"upload to {plan.url} failed: {type(e).__name__}: {_first_line(e)}") from None
    return str(getattr(info, "commit_url", None) or plan.url)
