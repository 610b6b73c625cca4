# A Python rank of a mixed group (see TestMixedGoPythonGroup): the same
# collectives as the golens ranks' mixedOps, in the same order, through
# torch.distributed's own init_process_group from the launcher's variables.
import json

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
r, n = dist.get_rank(), dist.get_world_size()
res = {}
x = torch.full((4,), float(r + 1))
dist.all_reduce(x)
res["allreduce"] = x.tolist()
outs = [torch.zeros(2) for _ in range(n)]
dist.all_gather(outs, torch.tensor([r + 1.0, 10.0 * (r + 1)]))
res["allgather"] = [v for o in outs for v in o.tolist()]
b = torch.tensor([r + 1.0, 7.0])
dist.broadcast(b, 1)
res["broadcast"] = b.tolist()
dist.destroy_process_group()
print(json.dumps(res))
