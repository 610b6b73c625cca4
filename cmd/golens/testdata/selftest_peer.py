# What golens dist selftest does, in Python's torch.distributed: a rank of
# a mixed golens/Python group (see TestDistSelftestWithPythonPeer).
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
r, n = dist.get_rank(), dist.get_world_size()
x = torch.full((4,), float(r + 1))
dist.all_reduce(x)
print(f"python rank {r} of {n}: all-reduce sum {x.tolist()}")
dist.destroy_process_group()
