# Reads a golens harvest shard with numpy alone, by the safetensors layout
# (an 8-byte little-endian header length, a JSON header, the raw data), and
# prints each tensor's name, shape and sum (the example indices in full).
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64}

raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8 : 8 + n])
data = raw[8 + n :]
for name, info in sorted(header.items()):
    if name == "__metadata__":
        continue
    start, end = info["data_offsets"]
    a = np.frombuffer(data[start:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    if name == "example":
        print(name, a.shape, a.tolist())
    else:
        print(name, a.shape, "%.4f" % float(a.astype(np.float64).sum()))
