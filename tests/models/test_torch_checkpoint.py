"""The torch-free `pytorch_model.bin` reader: equal to torch.load, and refuses to execute."""
import os
import pickle
import zipfile

import numpy as np
import pytest

from jaxblog.data.packages import MissingPackageError
from jaxblog.data.tokenizer import albert_tiny_zh_dir
from jaxblog.models.torch_checkpoint import load_state_dict


def _zip(path, pickle_bytes, storages=None, prefix="archive"):
  with zipfile.ZipFile(path, "w") as z:
    z.writestr(f"{prefix}/data.pkl", pickle_bytes)
    z.writestr(f"{prefix}/byteorder", "little")
    for key, raw in (storages or {}).items():
      z.writestr(f"{prefix}/data/{key}", raw)
  return path


def _tensor_pickle(storage_type=b"FloatStorage", numel=6, size=(2, 3), stride=(3, 1)):
  """Protocol-2 pickle of {'w': _rebuild_tensor_v2(storage '0', 0, size, stride)}, by hand."""
  def ints(values):
    return b"(" + b"".join(b"K" + bytes([v]) for v in values) + b"t"
  return (b"\x80\x02ccollections\nOrderedDict\n)R(Vw\n"
          b"ctorch._utils\n_rebuild_tensor_v2\n("
          b"(Vstorage\nctorch\n" + storage_type + b"\nV0\nVcpu\nK" + bytes([numel]) + b"tQ"
          b"K\x00" + ints(size) + ints(stride) + b"\x89ccollections\nOrderedDict\n)R"
          b"tRu.")


def test_hand_built_pickle_reads(tmp_path):
  data = np.arange(6, dtype=np.float32)
  state = load_state_dict(_zip(tmp_path / "ok.bin", _tensor_pickle(), {"0": data.tobytes()}))
  np.testing.assert_array_equal(state["w"], data.reshape(2, 3))
  # A transposed view (strides 1, 2) of the same storage.
  state = load_state_dict(_zip(tmp_path / "t.bin", _tensor_pickle(size=(3, 2), stride=(1, 3)),
                               {"0": data.tobytes()}))
  np.testing.assert_array_equal(state["w"], data.reshape(2, 3).T)


@pytest.mark.parametrize("payload,refused", [
    # protocol 0: GLOBAL os.system, MARK, string, TUPLE, REDUCE
    (lambda cmd: b"cos\nsystem\n(V" + cmd + b"\ntR.", "os.system"),
    # protocol 4: STACK_GLOBAL builtins.eval
    (lambda cmd: (b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c" + bytes([len(
        b"__import__('os').system('" + cmd + b"')")]) + b"__import__('os').system('" + cmd
                  + b"')\x85R."), "builtins.eval"),
    # a legitimate-looking dict whose value is built by subprocess.call
    (lambda cmd: (b"\x80\x02ccollections\nOrderedDict\n)R(Vw\ncsubprocess\ncall\n(V/bin/sh\nV-c\n"
                  b"V" + cmd + b"\nl\x85Ru."), "subprocess.call"),
])
def test_malicious_pickles_are_refused_and_nothing_runs(tmp_path, payload, refused):
  sentinel = tmp_path / "pwned"
  cmd = f"touch {sentinel}".encode()
  path = _zip(tmp_path / "evil.bin", payload(cmd))
  with pytest.raises(ValueError, match=rf"evil.bin: refusing to unpickle the global {refused}"):
    load_state_dict(path)
  assert not sentinel.exists()
  assert os.path.exists(path)


def test_bad_files_give_clear_errors(tmp_path):
  data = np.arange(6, dtype=np.float32).tobytes()
  with pytest.raises(FileNotFoundError, match="no such file"):
    load_state_dict(tmp_path / "missing.bin")
  (tmp_path / "garbage.bin").write_bytes(os.urandom(300))
  with pytest.raises(ValueError, match=r"garbage.bin: not a torch zip checkpoint \(truncated"):
    load_state_dict(tmp_path / "garbage.bin")
  (tmp_path / "legacy.bin").write_bytes(pickle.dumps({"a": 1}, protocol=2))
  with pytest.raises(ValueError, match="legacy pre-1.6 pickle format"):
    load_state_dict(tmp_path / "legacy.bin")
  good = _zip(tmp_path / "good.bin", _tensor_pickle(), {"0": data}).read_bytes()
  (tmp_path / "cut.bin").write_bytes(good[:len(good) // 2])
  with pytest.raises(ValueError, match="cut.bin: (not a torch zip|corrupt)"):
    load_state_dict(tmp_path / "cut.bin")
  with pytest.raises(ValueError, match=r"storage 'archive/data/0' is missing"):
    load_state_dict(_zip(tmp_path / "nostore.bin", _tensor_pickle()))
  with pytest.raises(ValueError, match="holds 2 elements, the pickle expects 6"):
    load_state_dict(_zip(tmp_path / "short.bin", _tensor_pickle(), {"0": data[:8]}))
  with pytest.raises(ValueError, match="reads past its storage"):
    load_state_dict(_zip(tmp_path / "past.bin", _tensor_pickle(size=(3, 3)), {"0": data}))
  with pytest.raises(ValueError, match="corrupt torch checkpoint"):
    load_state_dict(_zip(tmp_path / "trunc.bin", _tensor_pickle()[:-3], {"0": data}))
  with pytest.raises(ValueError, match="not a dict of tensors"):
    load_state_dict(_zip(tmp_path / "list.bin", pickle.dumps([1, 2], protocol=2)))
  with pytest.raises(ValueError, match="unexpected persistent id"):
    load_state_dict(_zip(tmp_path / "pid.bin", b"\x80\x02(Vfile\nV/etc/passwd\ntQ."))
  with zipfile.ZipFile(tmp_path / "nopkl.bin", "w") as z:
    z.writestr("archive/other", b"x")
  with pytest.raises(ValueError, match="expected one '<prefix>/data.pkl'"):
    load_state_dict(tmp_path / "nopkl.bin")


def test_equals_torch_save_for_dtypes_and_views(tmp_path):
  torch = pytest.importorskip("torch")
  base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
  state = {
      "f32": base, "transposed": base.t(), "slice": base[1:, 2:5], "f16": base.half(),
      "bf16": base.bfloat16(), "i64": torch.arange(5), "bool": base > 7,
      "u8": torch.arange(7, dtype=torch.uint8), "f64": base.double()[::2],
      "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 3),
  }
  torch.save(state, tmp_path / "many.bin")
  ours = load_state_dict(tmp_path / "many.bin")
  assert list(ours) == list(state)
  for name, tensor in state.items():
    expected = tensor.float().numpy() if name == "bf16" else tensor.numpy()
    got = ours[name].astype(np.float32) if name == "bf16" else ours[name]
    assert got.shape == expected.shape and got.dtype == expected.dtype, name
    np.testing.assert_array_equal(got, expected, err_msg=name)
  # Parameters (nn.Module.state_dict with keep_vars) go through _rebuild_parameter.
  torch.save({"p": torch.nn.Parameter(base)}, tmp_path / "param.bin")
  np.testing.assert_array_equal(load_state_dict(tmp_path / "param.bin")["p"], base.numpy())


def test_real_albert_checkpoint_equals_torch_load():
  try:
    path = albert_tiny_zh_dir() / "pytorch_model.bin"
  except MissingPackageError as e:
    pytest.skip(str(e))
  ours = load_state_dict(path)
  assert ours["albert.embeddings.word_embeddings.weight"].shape == (21128, 128)
  torch = pytest.importorskip("torch")
  theirs = torch.load(path, map_location="cpu", weights_only=True)
  assert list(ours) == list(theirs)
  for name, tensor in theirs.items():
    assert ours[name].dtype == tensor.numpy().dtype, name
    np.testing.assert_array_equal(ours[name], tensor.numpy(), err_msg=name)
