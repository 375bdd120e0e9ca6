"""Models by name: the shipped registry, the Hugging Face Hub, and the models pulled from it.

``dsv2 models pull NAME[:QUANT]`` goes through here: the Hub's file listing (sizes and LFS sha256),
the GGUF header read with an HTTP range request, the disk and memory checks, then the download
(resumed from a ``.dsv2-partial`` file beside the blob, verified against the sha256, and only then
renamed into place). Files land in the Hugging Face cache layout (``$HF_HOME/hub``, or
``HF_HUB_CACHE``), so other tools see them too; ``$DSV2_HOME/models.json`` records which pulled
model has which short name.

Nothing here downloads anything unless :func:`pull` is called. HF_ENDPOINT, HF_TOKEN, HF_HOME,
HF_HUB_CACHE and HF_HUB_OFFLINE are read from the environment the caller passes in.
huggingface-hub is imported only by the functions that talk to the Hub.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelError, RefusedError, RemoteError, UsageError
from .fsutil import write_atomic
from .ggufmeta import SPLIT_NAME, GGUFInfo, TruncatedHeader, parse_header, read_gguf

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

REGISTRY_FILE = Path(__file__).resolve().parent / "data" / "models.toml"
MANIFEST = "models.json"
DEFAULT_ENDPOINT = "https://huggingface.co"
PARTIAL = ".dsv2-partial"
HEADER_FIRST_READ = 8 * 1024**2  # a DeepSeek header (102,400-token vocabulary and its merges) is ~4 MB
HEADER_MAX_READ = 128 * 1024**2

# A quantization name inside a file name: Q4_K_M, IQ3_XS, Q8_0, F16 ... (word-bounded, any case).
_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Za-z0-9]{1,2})*|BF16|F16|F32)(?![A-Za-z0-9])", re.IGNORECASE)

OnBytes = Callable[[str, int, int], None]  # (what, done, total)


# --- the registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    title: str
    repo: str
    default_quant: str
    quants: tuple[str, ...]
    sizes_gb: Mapping[str, float]
    rated_context: int
    seen: str


def registry() -> dict[str, RegistryEntry]:
    """The short names shipped in ``data/models.toml`` (its header says where each entry was seen)."""
    data = tomllib.loads(REGISTRY_FILE.read_text(encoding="utf-8"))
    return {
        name: RegistryEntry(
            name=name,
            title=str(e["title"]),
            repo=str(e["repo"]),
            default_quant=str(e["default_quant"]),
            quants=tuple(e["quants"]),
            sizes_gb=dict(e.get("sizes_gb", {})),
            rated_context=int(e["rated_context"]),
            seen=str(e["seen"]),
        )
        for name, e in data["models"].items()
    }


@dataclass(frozen=True)
class ModelRef:
    """What the user asked ``pull`` for."""

    repo: str
    quant: str | None  # None: an exact file (hf://)
    filename: str | None
    name: str  # the local name: "deepseek-v2-lite:Q4_K_M", "owner/repo:Q4_K_M", "owner/repo/path.gguf"
    rated_context: int | None = None  # from the registry


_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def parse_ref(text: str) -> ModelRef:
    """``NAME[:QUANT]`` (registry), ``OWNER/REPO[:QUANT]`` or ``hf://OWNER/REPO/PATH.gguf``."""
    text = text.strip()
    if text.startswith("hf://"):
        parts = text[len("hf://") :].split("/", 2)
        if len(parts) < 3 or not parts[2].lower().endswith(".gguf") or not _REPO.match("/".join(parts[:2])):
            raise UsageError(f"{text}: expected hf://OWNER/REPO/PATH.gguf")
        repo = "/".join(parts[:2])
        return ModelRef(repo, None, parts[2], f"{repo}/{parts[2]}")
    base, _, quant = text.partition(":")
    entries = registry()
    if base.lower() in entries:
        entry = entries[base.lower()]
        chosen = (quant or entry.default_quant).upper()
        return ModelRef(entry.repo, chosen, None, f"{entry.name}:{chosen}", entry.rated_context)
    if _REPO.match(base):
        chosen = (quant or "Q4_K_M").upper()
        return ModelRef(base, chosen, None, f"{base}:{chosen}")
    raise UsageError(
        f"{text}: not a known model name; known: {', '.join(sorted(entries))} (or OWNER/REPO:QUANT, hf://OWNER/REPO/FILE.gguf)"
    )


def quant_of(filename: str) -> str | None:
    match = _QUANT.search(Path(filename).name)
    return match.group(1).upper() if match else None


# --- the Hub -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubConfig:
    endpoint: str
    token: str | None
    cache_dir: Path
    offline: bool

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> HubConfig:
        """HF_ENDPOINT, HF_TOKEN (else the token file under HF_HOME), HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE."""
        home = Path(
            environ.get("HF_HOME") or Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
        ).expanduser()
        cache = Path(environ.get("HF_HUB_CACHE") or home / "hub").expanduser()
        token = environ.get("HF_TOKEN") or None
        if token is None:
            token_file = Path(environ.get("HF_TOKEN_PATH") or home / "token").expanduser()
            try:
                token = token_file.read_text(encoding="utf-8").strip() or None
            except OSError:
                token = None
        offline = environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
        return cls(environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/"), token, cache, offline)

    def storage(self, repo: str) -> Path:
        return self.cache_dir / ("models--" + repo.replace("/", "--"))


@dataclass(frozen=True)
class RemoteFile:
    path: str  # in the repository
    size: int
    sha256: str | None  # LFS sha256; None for a file kept in git (never a GGUF in practice)


class Hub:
    """The few Hub calls ``pull`` makes, with their errors turned into one-line RemoteErrors."""

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        if config.offline:
            raise RemoteError("HF_HUB_OFFLINE is set: dsv2 models pull needs the Hugging Face Hub")

    def _headers(self) -> dict[str, str]:
        from huggingface_hub.utils._headers import build_hf_headers

        return dict(build_hf_headers(token=self.config.token or False, library_name="dsv2"))

    def files(self, repo: str, revision: str = "main") -> tuple[str, list[RemoteFile]]:
        """(commit, every file with its size and sha256) from the Hub's model-info API."""
        from huggingface_hub import HfApi

        api = HfApi(endpoint=self.config.endpoint, token=self.config.token or False, library_name="dsv2")
        with self._errors(repo):
            info = api.model_info(repo, revision=revision, files_metadata=True)
        files = []
        for sibling in info.siblings or []:
            lfs = sibling.lfs
            size = lfs.size if lfs is not None else sibling.size
            files.append(RemoteFile(sibling.rfilename, int(size or 0), lfs.sha256 if lfs is not None else None))
        if not info.sha:
            raise RemoteError(f"{self.config.endpoint}: no commit for {repo} in the Hub's answer")
        return info.sha, files

    def url(self, repo: str, commit: str, path: str) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(repo, path, revision=commit, endpoint=self.config.endpoint)

    def header(self, repo: str, commit: str, file: RemoteFile, size: int) -> GGUFInfo:
        """The GGUF header of ``file`` from its first bytes (a range request, doubled until it is whole)."""
        from huggingface_hub.utils._http import get_session, hf_raise_for_status

        want = HEADER_FIRST_READ
        while True:
            headers = {**self._headers(), "Range": f"bytes=0-{min(want, file.size) - 1}"}
            with (
                self._errors(repo),
                get_session().stream("GET", self.url(repo, commit, file.path), headers=headers) as r,
            ):
                hf_raise_for_status(r)
                data = bytearray()
                for chunk in r.iter_bytes():
                    data += chunk
                    if len(data) >= want:
                        break
            try:
                return parse_header(bytes(data[:want]), f"{repo}/{file.path}", size)
            except TruncatedHeader:
                if want >= min(file.size, HEADER_MAX_READ):
                    raise
                want *= 4

    def download(self, repo: str, commit: str, file: RemoteFile, on_bytes: OnBytes | None = None) -> Path:
        """``file`` into the cache: resumed from its partial file, sha256-checked, then renamed into place."""
        from huggingface_hub.file_download import http_get

        storage = self.config.storage(repo)
        blob = storage / "blobs" / (file.sha256 or f"{commit}-{file.path.replace('/', '--')}")
        pointer = storage / "snapshots" / commit / file.path
        if not blob.is_file():
            from filelock import FileLock, Timeout

            blob.parent.mkdir(parents=True, exist_ok=True)
            locks = self.config.cache_dir / ".locks" / storage.name  # where huggingface-hub keeps its own
            locks.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(locks / (blob.name + ".dsv2.lock")))
            try:
                lock.acquire(timeout=1)
            except Timeout:
                raise RemoteError(f"{repo}/{file.path}: another dsv2 models pull is downloading it now") from None
            try:
                if blob.is_file():  # the other pull finished it while we waited
                    return self._link(storage, blob, pointer, commit)
                partial = blob.with_name(blob.name + PARTIAL)
                have = partial.stat().st_size if partial.is_file() else 0
                if have > file.size:
                    partial.unlink()
                    have = 0
                with self._errors(repo), partial.open("ab") as fh:
                    http_get(
                        self.url(repo, commit, file.path),
                        fh,
                        resume_size=have,
                        headers=self._headers(),
                        expected_size=file.size,
                        displayed_filename=file.path,
                        tqdm_class=_progress_class(file.path, on_bytes),  # a duck-typed bar: http_get calls it
                    )
                if file.sha256 is not None:
                    digest = _sha256(
                        partial, file.size, lambda done: on_bytes and on_bytes("verifying", done, file.size)
                    )
                    if digest != file.sha256:
                        partial.unlink(missing_ok=True)
                        raise RemoteError(
                            f"{repo}/{file.path}: sha256 mismatch (got {digest[:12]}..., the Hub says "
                            f"{file.sha256[:12]}...); the download was deleted, run the pull again"
                        )
                os.replace(partial, blob)
            finally:
                lock.release()
        return self._link(storage, blob, pointer, commit)

    def _link(self, storage: Path, blob: Path, pointer: Path, commit: str) -> Path:
        """The snapshot's name for ``blob`` (a relative symlink, as huggingface-hub makes) and refs/main."""
        pointer.parent.mkdir(parents=True, exist_ok=True)
        if not pointer.exists():
            try:
                pointer.symlink_to(os.path.relpath(blob, pointer.parent))
            except OSError:  # no symlinks (some Windows setups): a copy, as huggingface-hub does
                shutil.copyfile(blob, pointer)
        ref = storage / "refs" / "main"
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
        return pointer

    def _errors(self, repo: str) -> Any:
        return _HubErrors(self.config, repo)


class _HubErrors:
    """Hub and network failures as one line each (exit 6)."""

    def __init__(self, config: HubConfig, repo: str) -> None:
        self.config, self.repo = config, repo

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, (ModelError, UsageError, RemoteError, RefusedError, KeyboardInterrupt)):
            return
        import httpx2
        from huggingface_hub import errors

        where = f"{self.config.endpoint}/{self.repo}"
        token = "HF_TOKEN is set but was not accepted" if self.config.token else "no HF_TOKEN is set"
        if isinstance(exc, errors.GatedRepoError):
            raise RemoteError(
                f"{self.repo}: gated repository ({token}): accept its terms at {where}, then set HF_TOKEN"
            ) from exc
        if isinstance(exc, errors.RevisionNotFoundError):
            raise RemoteError(f"{self.repo}: revision not found on {self.config.endpoint}") from exc
        if isinstance(exc, errors.RepositoryNotFoundError):
            raise RemoteError(
                f"{self.repo}: repository not found or private on {self.config.endpoint} ({token})"
            ) from exc
        if isinstance(exc, errors.HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else "?"
            if status in (401, 403):
                raise RemoteError(f"{self.repo}: access refused (HTTP {status}; {token})") from exc
            raise RemoteError(f"{where}: HTTP {status} from the Hub") from exc
        if isinstance(exc, ValueError) and "too large" in str(exc):  # http_get: over 50 GB needs hf_xet
            raise RemoteError(f"{where}: {str(exc).strip()}") from exc
        if isinstance(exc, (httpx2.HTTPError, OSError)):
            detail = str(exc).splitlines()[0] if str(exc) else "no detail"
            raise RemoteError(f"{where}: network error ({exc.__class__.__name__}: {detail})") from exc


def _progress_class(what: str, on_bytes: OnBytes | None) -> type:
    """A tqdm stand-in for huggingface-hub's http_get: it forwards byte counts and draws nothing."""

    class Bar:
        def __init__(self, *, total: int | None = None, initial: int = 0, **_: Any) -> None:
            self.total, self.n = total or 0, initial
            if on_bytes:
                on_bytes(what, self.n, self.total)

        def update(self, n: int = 1) -> None:
            self.n += n
            if on_bytes:
                on_bytes(what, self.n, self.total)

        def close(self) -> None:
            pass

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *_: object) -> None:
            pass

    return Bar


def _sha256(path: Path, size: int, on_done: Callable[[int], object]) -> str:
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(8 * 1024**2):
            digest.update(chunk)
            done += len(chunk)
            on_done(done)
    return digest.hexdigest()


# --- choosing the files ----------------------------------------------------------------------------


def select_files(files: list[RemoteFile], ref: ModelRef) -> list[RemoteFile]:
    """The GGUF file(s) ``ref`` means: one file, or every part of a split GGUF in part order."""
    ggufs = [f for f in files if f.path.lower().endswith(".gguf") and "mmproj" not in f.path.lower()]
    if ref.filename is not None:
        chosen = [f for f in ggufs if f.path == ref.filename]
        if not chosen:
            raise UsageError(f"{ref.repo}: no file {ref.filename}")
        return _whole_split(ggufs, chosen[0], ref)
    assert ref.quant is not None
    matching = [f for f in ggufs if quant_of(f.path) == ref.quant]
    if not matching:
        found = sorted({q for f in ggufs if (q := quant_of(f.path))})
        raise UsageError(
            f"{ref.repo}: no {ref.quant} GGUF"
            + (f"; quantizations there: {', '.join(found)}" if found else "; the repository has no GGUF files")
        )
    groups: dict[str, RemoteFile] = {}
    for f in matching:
        m = SPLIT_NAME.match(Path(f.path).name)
        key = str(Path(f.path).parent / m["stem"]) if m else f.path
        if m is None or int(m["part"]) == 1:
            groups.setdefault(key, f)
    if len(groups) != 1:
        raise UsageError(
            f"{ref.repo}: several {ref.quant} GGUFs ({', '.join(sorted(groups))}); name one: "
            f"dsv2 models pull hf://{ref.repo}/PATH.gguf"
        )
    return _whole_split(ggufs, next(iter(groups.values())), ref)


def _whole_split(ggufs: list[RemoteFile], first: RemoteFile, ref: ModelRef) -> list[RemoteFile]:
    m = SPLIT_NAME.match(Path(first.path).name)
    if m is None:
        return [first]
    count, folder = int(m["count"]), Path(first.path).parent
    by_path = {f.path: f for f in ggufs}
    parts = []
    for part in range(1, count + 1):
        path = str(folder / f"{m['stem']}-{part:05d}-of-{count:05d}.gguf").removeprefix("./")
        if path not in by_path:
            raise RemoteError(f"{ref.repo}: split GGUF {first.path} is missing part {part} of {count} on the Hub")
        parts.append(by_path[path])
    return parts


def other_quants(files: list[RemoteFile]) -> dict[str, int]:
    """Every quantization in a listing with its total size (split parts added up)."""
    sizes: dict[str, int] = {}
    for f in files:
        if f.path.lower().endswith(".gguf") and (q := quant_of(f.path)):
            sizes[q] = sizes.get(q, 0) + f.size
    return sizes


# --- pulled models ----------------------------------------------------------------------------------


@dataclass
class PulledModel:
    name: str
    repo: str
    commit: str
    quant: str
    files: list[str]  # in the repository, first part first
    path: str  # the local file dsv2 loads (the first part of a split GGUF)
    size: int
    sha256: list[str | None]
    kv_format: str
    window: int  # the window dsv2 uses by default (rated, or the largest that fit when pulled)
    rated_context: int
    pulled_at: float = field(default_factory=time.time)

    @property
    def short_name(self) -> str:
        return self.name.split(":", 1)[0]


def manifest_path(home: Path) -> Path:
    return home / MANIFEST


def load_manifest(home: Path) -> dict[str, PulledModel]:
    path = manifest_path(home)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: PulledModel(**entry) for name, entry in raw.get("models", {}).items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"{path}: cannot read the list of pulled models ({exc})") from exc


def save_manifest(home: Path, models: Mapping[str, PulledModel]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    payload = {"version": 1, "models": {name: asdict(m) for name, m in sorted(models.items())}}
    write_atomic(manifest_path(home), json.dumps(payload, indent=2) + "\n")


def find_pulled(home: Path, name: str) -> PulledModel | None:
    """The pulled model ``name`` means: exact ``NAME:QUANT``, else ``NAME`` alone when one quant is
    pulled (several: the registry's default quant, else the latest pulled)."""
    models = load_manifest(home)
    if not models:
        return None
    wanted = name.strip()
    for key, model in models.items():
        if key.lower() == wanted.lower():
            return model
    same = [m for m in models.values() if m.short_name.lower() == wanted.lower()]
    if not same:
        return None
    entry = registry().get(wanted.lower())
    for m in same:
        if entry is not None and m.quant == entry.default_quant:
            return m
    return max(same, key=lambda m: m.pulled_at)


def remove(home: Path, config: HubConfig, name: str) -> PulledModel:
    """Delete a pulled model's files (blobs no other snapshot uses) and its entry."""
    models = load_manifest(home)
    model = find_pulled(home, name)
    if model is None:
        raise UsageError(f"{name}: no pulled model of that name (dsv2 models list shows them)")
    storage = config.storage(model.repo)
    snapshot = storage / "snapshots" / model.commit
    for rel in model.files:
        pointer = snapshot / rel
        blob = pointer.resolve() if pointer.is_symlink() else None
        pointer.unlink(missing_ok=True)
        if blob is not None and blob.is_file() and not _still_linked(storage, blob):
            blob.unlink()
    for folder in sorted((p for p in snapshot.rglob("*") if p.is_dir()), reverse=True):
        _rmdir_if_empty(folder)
    _rmdir_if_empty(snapshot)
    del models[model.name]
    save_manifest(home, models)
    return model


def _still_linked(storage: Path, blob: Path) -> bool:
    return any(p.is_symlink() and p.resolve() == blob for p in (storage / "snapshots").rglob("*"))


def _rmdir_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: something else lives there
        folder.rmdir()


@dataclass(frozen=True)
class CachedGGUF:
    """A GGUF in the Hugging Face cache that dsv2 did not pull (or did: ``pulled`` names it)."""

    repo: str
    path: Path  # the snapshot path (first part of a split)
    rel: str  # in the repository


def cached_ggufs(config: HubConfig) -> Iterator[CachedGGUF]:
    """GGUF files in the Hugging Face cache, first parts only for split ones."""
    if not config.cache_dir.is_dir():
        return
    for storage in sorted(config.cache_dir.glob("models--*")):
        repo = storage.name.removeprefix("models--").replace("--", "/", 1)
        for snapshot in sorted((storage / "snapshots").glob("*")):
            for path in sorted(snapshot.rglob("*.gguf")):
                m = SPLIT_NAME.match(path.name)
                if (m is None or int(m["part"]) == 1) and path.exists():
                    yield CachedGGUF(repo, path, str(path.relative_to(snapshot)))


def local_info(path: Path) -> GGUFInfo | None:
    try:
        return read_gguf(path)
    except ModelError:
        return None


def disk_free(path: Path) -> int:
    """Free bytes on the file system that ``path`` (or its nearest existing parent) is on."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def present_bytes(config: HubConfig, repo: str, files: list[RemoteFile]) -> int:
    """Bytes of ``files`` already in the cache (whole blobs and partial downloads)."""
    blobs = config.storage(repo) / "blobs"
    have = 0
    for f in files:
        if f.sha256 is None:
            continue
        if (blobs / f.sha256).is_file():
            have += f.size
        elif (blobs / (f.sha256 + PARTIAL)).is_file():
            have += min((blobs / (f.sha256 + PARTIAL)).stat().st_size, f.size)
    return have
