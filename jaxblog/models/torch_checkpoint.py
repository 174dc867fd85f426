"""PyTorch `pytorch_model.bin` state dicts read with NumPy, without torch and without trust.

Since PyTorch 1.6, `torch.save` writes a zip archive: `<prefix>/data.pkl` is
a pickle of the state dict in which every tensor is a call
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and
every storage a *persistent id* `('storage', torch.FloatStorage, key,
location, numel)` whose bytes are the zip member `<prefix>/data/<key>`
(`<prefix>/byteorder` says `little` or `big`; absent means little).

A pickle can name any Python callable and have the unpickler call it, so
`torch.load` on a stranger's file runs the stranger's code. `load_state_dict`
unpickles through `pickle.Unpickler` with `find_class` replaced: it admits
only the tensor-rebuild functions, the `torch.*Storage` types and
`collections.OrderedDict`, each mapped to a NumPy stand-in written here (no
torch object is ever imported or built), and refuses every other global
(`os.system`, `builtins.eval`, ...) with a `ValueError` naming the file and
the global *before* anything is called. Persistent ids are checked too, and
storages are read as raw bytes, so nothing in the file is executed.

The legacy pre-1.6 format (a bare pickle stream, not a zip) is refused with a
clear message: re-save it with a current torch.

Example:
  state = load_state_dict("albert-tiny-chinese/pytorch_model.bin")
  state["albert.embeddings.word_embeddings.weight"].shape  # (21128, 128)

References: PyTorch serialization notes,
https://pytorch.org/docs/stable/notes/serialization.html; Python `pickle`
docs, "Restricting Globals",
https://docs.python.org/3/library/pickle.html#restricting-globals.
"""
from __future__ import annotations

import collections
import io
import pathlib
import pickle
import zipfile
import zlib
from typing import Dict, Union

import ml_dtypes
import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "UntypedStorage": np.uint8,
}


class _StorageType:
  """Stand-in for a `torch.<X>Storage` class: only carries its dtype."""

  def __init__(self, name: str):
    self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
  """NumPy version of `torch._utils._rebuild_tensor_v2` (strides in elements)."""
  del requires_grad, backward_hooks, metadata
  if not isinstance(storage, np.ndarray) or storage.ndim != 1:
    raise ValueError(f"tensor rebuild got a {type(storage).__name__} instead of a storage")
  size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
  offset = int(storage_offset)
  if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
    raise ValueError(f"bad tensor layout: size {size}, stride {stride}, offset {offset}")
  if 0 in size:
    return np.zeros(size, storage.dtype)
  last = offset + sum((n - 1) * s for n, s in zip(size, stride))
  if last >= storage.size:
    raise ValueError(f"tensor (size {size}, stride {stride}, offset {offset}) reads past "
                     f"its storage of {storage.size} elements")
  view = np.lib.stride_tricks.as_strided(
      storage[offset:], shape=size, strides=tuple(s * storage.itemsize for s in stride),
      writeable=False)
  return np.array(view)  # own, contiguous copy


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
  """NumPy version of `torch._utils._rebuild_parameter(_with_state)`: the data."""
  del requires_grad, backward_hooks, state
  return data


def _ordered_dict(*args, **kwargs):
  return collections.OrderedDict(*args, **kwargs)


_ALLOWED = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}
_ALLOWED.update({("torch", name): _StorageType(name) for name in _STORAGE_DTYPES})
_ALLOWED[("torch.storage", "UntypedStorage")] = _ALLOWED[("torch", "UntypedStorage")]


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler that resolves only `_ALLOWED` globals and zip-member storages."""

  def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, byteorder: str,
               path: str):
    super().__init__(io.BytesIO(data))
    self.archive, self.prefix, self.path = archive, prefix, path
    self.order = "<" if byteorder == "little" else ">"
    self.storages: Dict[str, np.ndarray] = {}

  def find_class(self, module, name):
    try:
      return _ALLOWED[(module, name)]
    except KeyError:
      raise ValueError(f"{self.path}: refusing to unpickle the global {module}.{name} (only "
                       "tensor/storage rebuild functions and collections.OrderedDict are "
                       "allowed); nothing in the file was executed") from None

  def persistent_load(self, pid):
    if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
        or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)):
      raise ValueError(f"{self.path}: unexpected persistent id {pid!r:.200}")
    _, storage_type, key, _, numel = pid
    if key not in self.storages:
      member = f"{self.prefix}data/{key}"
      try:
        raw = self.archive.read(member)
      except KeyError:
        raise ValueError(f"{self.path}: storage {member!r} is missing from the archive") from None
      dtype = storage_type.dtype.newbyteorder(self.order) if storage_type.dtype.itemsize > 1 \
          else storage_type.dtype
      if len(raw) % dtype.itemsize:
        raise ValueError(f"{self.path}: storage {member!r} has {len(raw)} bytes, not a "
                         f"multiple of {dtype.itemsize} ({storage_type.name})")
      array = np.frombuffer(raw, dtype)
      if storage_type.name != "UntypedStorage" and array.size < int(numel):
        raise ValueError(f"{self.path}: storage {member!r} holds {array.size} elements, "
                         f"the pickle expects {numel}")
      self.storages[key] = array.astype(storage_type.dtype, copy=False)
    return self.storages[key]


def load_state_dict(path: Union[str, pathlib.Path]) -> Dict[str, np.ndarray]:
  """Reads a `torch.save`d state dict (zip format) as name -> NumPy array.

  Args:
    path: a `pytorch_model.bin` (or any `torch.save` zip of a dict of tensors).

  Returns:
    a dict of tensor name -> NumPy array (native byte order, own memory), in
    file order; bfloat16 tensors come back as `ml_dtypes.bfloat16`.

  Raises:
    FileNotFoundError: no such file.
    ValueError: not a torch zip archive (legacy format, truncated or garbage
      file), a refused global or persistent id, a missing or short storage,
      or the pickle is not a dict of tensors. The message names the file.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no such file")
  if not zipfile.is_zipfile(path):
    with open(path, "rb") as f:
      head = f.read(2)
    legacy = len(head) == 2 and head[0] == 0x80
    raise ValueError(
        f"{path}: not a torch zip checkpoint"
        + (" (this looks like the legacy pre-1.6 pickle format, which is not supported; "
           "re-save it with torch.save from torch >= 1.6)" if legacy else
           " (truncated or not a torch.save file)"))
  try:
    with zipfile.ZipFile(path) as archive:
      pickles = [n for n in archive.namelist() if n.endswith("data.pkl")
                 and n.count("/") == 1]
      if len(pickles) != 1:
        raise ValueError(f"{path}: expected one '<prefix>/data.pkl' in the archive, found "
                         f"{pickles or 'none'}")
      prefix = pickles[0][:-len("data.pkl")]
      names = set(archive.namelist())
      byteorder = (archive.read(prefix + "byteorder").decode().strip()
                   if prefix + "byteorder" in names else "little")
      if byteorder not in ("little", "big"):
        raise ValueError(f"{path}: unknown byteorder {byteorder!r}")
      unpickler = _RestrictedUnpickler(archive.read(pickles[0]), archive, prefix,
                                       byteorder, str(path))
      state = unpickler.load()
  except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, zlib.error) as e:
    raise ValueError(f"{path}: corrupt torch checkpoint ({type(e).__name__}: {e})") from None
  if not isinstance(state, dict) or not all(
      isinstance(k, str) and isinstance(v, np.ndarray) for k, v in state.items()):
    raise ValueError(f"{path}: the pickle is not a dict of tensors "
                     f"(got {type(state).__name__})")
  return dict(state)

