"""Where run artifacts (the executed notebook, large outputs) live: any fsspec URL, as papermill does for notebooks.

    artifacts = ArtifactStore.from_url("/var/lib/playbook-nb/artifacts")     # local directory (the default)
    artifacts = ArtifactStore.from_url("s3://team-bucket/playbook-nb")       # or gs://, az://, memory://, ...
    url = artifacts.put(run_id, "notebook.ipynb", local_path)            # -> ".../<run id>/notebook.ipynb"
    with artifacts.open(url) as f: ...

A run's artifacts sit under `<root>/<run id>/`. For a local root, `url` is a plain path (what the index held
before remote stores existed); for a remote one it is the full URL (`s3://bucket/prefix/7/notebook.ipynb`).
`fsspec` is imported only for remote roots, so a local setup needs nothing beyond the standard library.

S3 settings come from the usual places (AWS_* environment variables, ~/.aws); a non-AWS endpoint (MinIO,
Ceph, ...) is given with `PLAYBOOK_S3_ENDPOINT_URL` (or `AWS_ENDPOINT_URL`, which recent botocore reads itself).
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from playbook_nb.domain.errors import StorageFault, StoreError

S3_ENDPOINT_ENV = "PLAYBOOK_S3_ENDPOINT_URL"
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def is_url(text: str) -> bool:
    """True for `scheme://...` other than `file://` (a local path either way)."""
    match = _SCHEME.match(text)
    return match is not None and match.group(1).lower() != "file"


def _protocol(url: str) -> str:
    """The scheme of a URL `is_url` accepted, lower-case."""
    match = _SCHEME.match(url)
    assert match is not None, url
    return match.group(1).lower()


def _local_path(text: str) -> Path:
    if text.lower().startswith("file://"):
        text = text[len("file://") :]
    return Path(text).expanduser().resolve()


def storage_options(protocol: str) -> dict[str, Any]:
    """Extra fsspec options for a protocol, from the environment (only the S3 endpoint for now)."""
    if protocol in ("s3", "s3a"):
        endpoint = os.environ.get(S3_ENDPOINT_ENV)
        if endpoint:
            return {"client_kwargs": {"endpoint_url": endpoint}}
    return {}


class ArtifactStore:
    """A root (local directory or fsspec URL) with one folder per run."""

    def __init__(self, root: str, fs: Any = None, fs_root: str | None = None):
        self.root = root  # a resolved local path, or a URL without a trailing slash
        self._fs = fs
        self._fs_root = fs_root

    @classmethod
    def from_url(cls, root: str | os.PathLike[str], **options: Any) -> ArtifactStore:
        text = os.fspath(root)
        if not is_url(text):
            return cls(str(_local_path(text)))
        try:
            import fsspec
        except ImportError:
            raise StoreError(
                f"artifacts at {text} need fsspec: pip install 'playbook-nb[s3]' (or fsspec and its driver)"
            ) from None
        protocol = _protocol(text)
        try:
            fs, fs_root = fsspec.core.url_to_fs(text, **{**storage_options(protocol), **options})
        except (ImportError, ValueError) as err:
            raise StoreError(f"cannot use the artifact store {text}: {err}") from None
        return cls(text.rstrip("/"), fs, fs_root.rstrip("/"))

    @property
    def is_local(self) -> bool:
        return self._fs is None

    def __repr__(self) -> str:
        return f"<ArtifactStore {self.root}>"

    # ---- per run ------------------------------------------------------------------------------------

    def run_location(self, run_id: int) -> str:
        """Where run `run_id`'s artifacts go: a directory path, or a URL prefix."""
        if self.is_local:
            return str(Path(self.root) / str(run_id))
        return f"{self.root}/{run_id}"

    def local_dir(self, run_id: int, location: str | None = None) -> Path:
        """The run's local directory, created on first use (local roots only)."""
        directory = Path(location or self.run_location(run_id))
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageFault(
                f"cannot create the artifact directory {directory}: {err.strerror or err}"
            ) from None
        return directory

    def put(
        self, run_id: int, name: str, local_path: str | os.PathLike[str], location: str | None = None
    ) -> str:
        """Copy a local file into the run's artifacts as `name`; returns its path (local) or URL (remote)."""
        if not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise StoreError(f"artifact name {name!r} must stay inside the run's folder")
        location = location or self.run_location(run_id)
        if not is_url(location):
            target = self.local_dir(run_id, location) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if Path(local_path).resolve() != target.resolve():
                try:
                    shutil.copyfile(local_path, target)
                except OSError as err:
                    raise StorageFault(f"cannot write the artifact {target}: {err.strerror or err}") from None
            return str(target)
        url = f"{location.rstrip('/')}/{name}"
        try:
            self._fs_for(url).put_file(os.fspath(local_path), self._strip(url))
        except Exception as err:  # drivers raise their own types (botocore, aiohttp ...)
            raise StorageFault(f"cannot upload the artifact {url}: {_one_line(err)}") from None
        return url

    def open(self, url: str, mode: str = "rb") -> IO[Any]:
        """Open an artifact by the path or URL `put` returned (or any fsspec URL)."""
        if not is_url(url):
            try:
                return open(_local_path(url), mode)  # the caller closes it
            except OSError as err:
                raise StoreError(f"cannot open the artifact {url}: {err.strerror or err}") from None
        try:
            return self._fs_for(url).open(self._strip(url), mode)
        except FileNotFoundError:
            raise StoreError(f"no artifact at {url}") from None
        except Exception as err:
            raise StoreError(f"cannot open the artifact {url}: {_one_line(err)}") from None

    def owns(self, location: str) -> bool:
        """True when `location` (a run's recorded artifact directory or URL) is inside this root: what
        this index may delete (prune never touches a folder another index wrote)."""
        if self.is_local and not is_url(location):
            local_root, path = Path(self.root).resolve(), Path(location).resolve()
            return path == local_root or local_root in path.parents
        return str(location).startswith(str(self.root).rstrip("/") + "/")

    def delete(self, location: str) -> int:
        """Remove a run's artifacts (a directory or URL prefix); returns the bytes freed."""
        if not is_url(location):
            directory = Path(location)
            freed = tree_size(directory)
            if directory.exists():
                try:
                    shutil.rmtree(directory)
                except OSError as err:
                    raise StoreError(
                        f"cannot delete the artifacts {directory}: {err.strerror or err}"
                    ) from None
            return freed
        fs, path = self._fs_for(location), self._strip(location)
        try:
            if not fs.exists(path):
                return 0
            freed = int(fs.du(path, total=True))
            fs.rm(path, recursive=True)
        except Exception as err:
            raise StoreError(f"cannot delete the artifacts {location}: {_one_line(err)}") from None
        return freed

    # ---- helpers ------------------------------------------------------------------------------------

    def _fs_for(self, url: str) -> Any:
        if self._fs is not None and url.startswith(self.root):
            return self._fs
        import fsspec

        fs, _ = fsspec.core.url_to_fs(url, **storage_options(_protocol(url)))
        return fs

    def _strip(self, url: str) -> str:
        if self._fs is not None and self._fs_root is not None and url.startswith(self.root):
            return self._fs_root + url[len(self.root) :]
        import fsspec

        return fsspec.core.url_to_fs(url, **storage_options(_protocol(url)))[1]


def local_staging_dir(location: str) -> Path:
    """A local scratch directory standing for a remote run location (files there are not uploaded)."""
    import hashlib

    from playbook_nb.user_dirs import user_dir

    key = hashlib.sha256(location.encode()).hexdigest()[:16]
    directory = Path(user_dir("cache")) / "artifacts" / key
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def tree_size(directory: str | os.PathLike[str] | None) -> int:
    """Bytes held by the files under a local directory (0 when it is absent)."""
    if not directory or not Path(directory).exists():
        return 0
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with suppress(OSError):
                total += (Path(root) / name).lstat().st_size
    return total


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
