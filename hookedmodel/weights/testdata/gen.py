"""Generate the checkpoint fixtures in this directory.

Run from this directory with Debian's Python and python3-torch (torch 1.13):

    /usr/bin/python3 gen.py

Every tensor holds arange-based values that weights_test.go recomputes
independently (see the comment on each entry). The safetensors files are
written by hand with json and struct, not by torch or a safetensors library,
so the Go reader is checked against an independent writer.
"""

import collections
import json
import os
import struct

import torch
from torch import nn


def arange(n, dtype=torch.float32):
    return torch.arange(n, dtype=torch.float64).to(dtype)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.ln = nn.LayerNorm(4)
        self.unembed = nn.Linear(4, 5, bias=False)
        self.unembed.weight = self.embed.weight  # tied weights
        self.register_buffer("pos_ids", arange(6, torch.int64) * (1 << 33) - 5)
        with torch.no_grad():
            self.embed.weight.copy_((arange(20) * 0.25 - 2).reshape(5, 4))
            self.ln.weight.copy_(1 + arange(4) * 0.5)
            self.ln.bias.copy_(arange(4) * -0.125)


def state_dict():
    model = Tiny()
    # keep_vars keeps the nn.Parameter objects, as a state dict saved from a
    # module with parameters still attached does; it also keeps _metadata.
    sd = model.state_dict(keep_vars=True)
    base = arange(12).reshape(3, 4) + 0.5
    base2 = arange(24, torch.float64).reshape(4, 6)
    sd["transposed"] = base.t()  # [4 3], strides (1, 4)
    sd["tied.view"] = model.embed.weight.detach()[1:3]  # storage offset 4
    sd["strided"] = base2[1:, ::2]  # [3 3], strides (6, 2), offset 6
    sd["half"] = ((arange(6) - 2.5) * 0.5).to(torch.float16).reshape(2, 3)
    sd["bf16"] = (arange(6) * -0.75 + 1).to(torch.bfloat16).reshape(3, 2)
    sd["scalar"] = torch.tensor(3.5)  # 0-d
    sd["i32"] = arange(3, torch.int32) * 7 - 7
    sd["mask"] = (arange(4, torch.int64) % 3 == 0).reshape(2, 2)
    sd["u8"] = arange(4, torch.uint8) * 60
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = nn.Parameter(arange(3) * 2 + 1)
    return sd


# safetensors dtype name and struct format for each torch dtype.
ST = {
    torch.float32: ("F32", "f"),
    torch.float64: ("F64", "d"),
    torch.float16: ("F16", "e"),
    torch.bfloat16: ("BF16", None),
    torch.int64: ("I64", "q"),
    torch.int32: ("I32", "i"),
    torch.uint8: ("U8", "B"),
    torch.bool: ("BOOL", "?"),
}


def raw_bytes(t):
    name, fmt = ST[t.dtype]
    values = t.reshape(-1).tolist()
    if name == "BF16":
        # bfloat16 is the top half of a float32; these values are exact.
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    return struct.pack("<%d%s" % (len(values), fmt), *values)


def write_safetensors(path, tensors, metadata):
    header, data = {}, b""
    for key, t in tensors.items():
        b = raw_bytes(t.detach())
        header[key] = {
            "dtype": ST[t.dtype][0],
            "shape": list(t.shape),
            "data_offsets": [len(data), len(data) + len(b)],
        }
        data += b
    header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def shard(sd, dirname, names, save):
    keys = list(sd.keys())
    half = len(keys) // 2
    parts = [keys[:half], keys[half:]]
    weight_map = {}
    for i, part in enumerate(parts):
        fname = names % (i + 1)
        save(collections.OrderedDict((k, sd[k]) for k in part), os.path.join(dirname, fname))
        weight_map.update({k: fname for k in part})
    return {"metadata": {"total_size": 0}, "weight_map": weight_map}


def main():
    sd = state_dict()
    for d in ["torch_zip", "torch_legacy", "torch_sharded", "safetensors", "safetensors_sharded"]:
        os.makedirs(d, exist_ok=True)
    torch.save(sd, "torch_zip/pytorch_model.bin")
    torch.save(sd, "torch_legacy/pytorch_model.bin", _use_new_zipfile_serialization=False)
    index = shard(sd, "torch_sharded", "pytorch_model-%05d-of-00002.bin", torch.save)
    with open("torch_sharded/pytorch_model.bin.index.json", "w") as f:
        json.dump(index, f, indent=2)

    meta = {"format": "pt", "config": json.dumps({"d_model": 4, "n_layers": 1})}
    write_safetensors("safetensors/model.safetensors", sd, meta)
    index = shard(sd, "safetensors_sharded", "model-%05d-of-00002.safetensors",
                  lambda part, path: write_safetensors(path, part, {"format": "pt"}))
    with open("safetensors_sharded/model.safetensors.index.json", "w") as f:
        json.dump(index, f, indent=2)


if __name__ == "__main__":
    main()
