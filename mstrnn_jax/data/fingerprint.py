"""Fingerprints of raw source files, kept beside prepared data so that stale data is never reused.

A fingerprint lists every visible file under a source folder (relative name, size, mtime in ns)
plus the preparation options; `changes(old, new)` says in one line what differs.

```python
fp = fingerprint(raw_dir, options={"frame_size": 64})
save(prepared_dir, fp)
...
if load(prepared_dir) != fingerprint(raw_dir, options=...): re-prepare
```
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
from typing import Optional

FILENAME = 'source_fingerprint.json'


def _visible(rel: pathlib.PurePath) -> bool:
  return not any(part.startswith('.') for part in rel.parts)


def fingerprint(root, options: Optional[dict] = None, extra=()) -> dict:
  """`{"files": {relative posix name: [size, mtime_ns]}, "options": {...}}` of `root`.

  Hidden files and folders (names starting with '.') are ignored; so are folders themselves
  (an empty folder adds nothing). `options` must be JSON-serialisable. `extra`: files or
  folders outside `root` to include too (keyed by their absolute path).
  """
  root = pathlib.Path(root)
  files = _files(root, '')
  for path in extra:
    path = pathlib.Path(path).absolute()
    files.update(_files(path, path.as_posix()) if path.is_dir() else _files_one(path))
  return {'files': files, 'options': json.loads(json.dumps(options or {}))}


def _files(root: pathlib.Path, prefix: str) -> dict:
  files = {}
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
    for name in sorted(filenames):
      path = pathlib.Path(dirpath) / name
      rel = path.relative_to(root)
      if _visible(rel):
        key = rel.as_posix() if not prefix else f'{prefix}/{rel.as_posix()}'
        files.update(_files_one(path, key))
  return files


def _files_one(path: pathlib.Path, key: Optional[str] = None) -> dict:
  """{key: [size, mtime_ns]}; a missing `path` is recorded as [-1, -1] (its arrival counts)."""
  try:
    st = path.stat()
  except FileNotFoundError:
    return {key or path.as_posix(): [-1, -1]}
  return {key or path.as_posix(): [st.st_size, st.st_mtime_ns]}


def changes(old: Optional[dict], new: dict) -> str:
  """One line describing how `new` differs from `old` ('' when equal)."""
  if old is None:
    return 'no fingerprint of the source files is stored with the prepared data'
  parts = []
  a, b = old.get('files', {}), new['files']
  added = sorted(set(b) - set(a))
  removed = sorted(set(a) - set(b))
  changed = sorted(k for k in set(a) & set(b) if list(a[k]) != list(b[k]))
  for what, names in (('added', added), ('removed', removed), ('changed', changed)):
    if names:
      shown = ', '.join(names[:3]) + (f', ... ({len(names) - 3} more)' if len(names) > 3 else '')
      parts.append(f'{len(names)} file(s) {what}: {shown}')
  if old.get('options', {}) != new['options']:
    parts.append(f'options changed from {old.get("options", {})} to {new["options"]}')
  return '; '.join(parts)


def save(folder, fp: dict) -> None:
  """Writes `fp` to `folder/source_fingerprint.json` atomically."""
  path = pathlib.Path(folder) / FILENAME
  tmp = path.with_suffix(f'.tmp{os.getpid()}')
  tmp.write_text(json.dumps(fp, sort_keys=True))
  os.replace(tmp, path)


def load(folder) -> Optional[dict]:
  """The stored fingerprint of `folder`, or None when missing or unreadable."""
  try:
    return json.loads((pathlib.Path(folder) / FILENAME).read_text())
  except (OSError, ValueError):
    return None


@contextlib.contextmanager
def lock(prepared):
  """Holds an exclusive lock on `<prepared>.lock` (other processes preparing the same data wait)."""
  path = pathlib.Path(f'{prepared}.lock')
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'w') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)
