// Package dist runs golens on several processes, on the engine PyTorch
// clusters run: c10d (gotch's binding), with a TCPStore rendezvous and
// Gloo on the CPU or NCCL on CUDA. A process joins its group from what
// its launcher set (torchrun, Slurm's srun, Kubernetes' PyTorchJob or
// JobSet: see Env) or from explicit options:
//
//	g, err := dist.Join(ctx)                   // RANK, WORLD_SIZE, MASTER_ADDR, ...
//	g, err := dist.Join(ctx, dist.WithRank(1, 2), dist.WithMaster("10.0.0.1", 29500))
//	defer g.Close()
//	err = g.AllReduce(ctx, grads, dist.Avg)
//
// Join mirrors torch.distributed.init_process_group's store layout, so
// Python ranks (init_process_group("gloo")) and golens ranks can be one
// group. A rank never does the job alone: Join waits for every rank up to
// the timeout and then fails naming the ranks that never came. Ranks that
// load a different model or config (WithConfig) are refused at the
// rendezvous. Each golens rank beats a heartbeat in the store, so that
// when a collective fails because a peer died, the error names the lost
// rank.
package dist
