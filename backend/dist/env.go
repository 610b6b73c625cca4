package dist

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Env is what a launcher tells each process about its place in the job:
// torchrun (and Kubernetes' PyTorchJob and JobSet, which set the same
// variables) or Slurm's srun.
type Env struct {
	Rank           int    // RANK (SLURM_PROCID)
	WorldSize      int    // WORLD_SIZE (SLURM_NTASKS)
	LocalRank      int    // LOCAL_RANK (SLURM_LOCALID); 0 when unset
	LocalWorldSize int    // LOCAL_WORLD_SIZE; 0 when unset
	MasterAddr     string // MASTER_ADDR: the store's host
	MasterPort     int    // MASTER_PORT: the store's port
	// AgentStore is set under torchrun (TORCHELASTIC_USE_AGENT_STORE=True):
	// torchrun's agent serves the store, and every rank is its client.
	AgentStore bool
	// RestartCount is TORCHELASTIC_RESTART_COUNT: how often torchrun has
	// restarted the group; each attempt rendezvouses under its own keys.
	RestartCount int
	RunID        string // TORCHELASTIC_RUN_ID
}

// FromEnv reads the process's environment (see ParseEnv).
func FromEnv() (Env, error) { return ParseEnv(os.LookupEnv) }

// Launched reports whether a launcher started this process: the
// environment names a rank (RANK or SLURM_PROCID), or a WORLD_SIZE other
// than 1, which Join then refuses without a RANK rather than let a rank of
// several run the whole job alone.
func Launched() bool {
	ws := os.Getenv("WORLD_SIZE")
	return os.Getenv("RANK") != "" || os.Getenv("SLURM_PROCID") != "" || (ws != "" && ws != "1")
}

// ParseEnv reads a launcher's variables through lookup: RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT and torchrun's
// TORCHELASTIC_*; without RANK, Slurm's SLURM_PROCID, SLURM_NTASKS and
// SLURM_LOCALID (MASTER_ADDR and MASTER_PORT are then the job script's to
// set). An error names the variable that is missing or wrong.
func ParseEnv(lookup func(string) (string, bool)) (Env, error) {
	p := envParser{lookup: lookup}
	var e Env
	if rank, _ := lookup("RANK"); rank != "" || !p.has("SLURM_PROCID") {
		e.Rank = p.int("RANK", 0, true)
		e.WorldSize = p.int("WORLD_SIZE", 1, true)
		e.LocalRank = p.int("LOCAL_RANK", 0, false)
	} else {
		e.Rank = p.int("SLURM_PROCID", 0, true)
		e.WorldSize = p.int("SLURM_NTASKS", 1, true)
		e.LocalRank = p.int("SLURM_LOCALID", 0, false)
	}
	e.LocalWorldSize = p.int("LOCAL_WORLD_SIZE", 1, false)
	e.MasterAddr = p.str("MASTER_ADDR")
	e.MasterPort = p.int("MASTER_PORT", 1, true)
	if e.MasterPort > 65535 {
		p.fail("MASTER_PORT=%d is not a port (1 to 65535)", e.MasterPort)
	}
	agent, _ := lookup("TORCHELASTIC_USE_AGENT_STORE")
	e.AgentStore = agent == "True"
	e.RestartCount = p.int("TORCHELASTIC_RESTART_COUNT", 0, false)
	e.RunID, _ = lookup("TORCHELASTIC_RUN_ID")
	if p.err == nil && e.Rank >= e.WorldSize {
		p.fail("rank %d is not below the world size %d", e.Rank, e.WorldSize)
	}
	return e, p.err
}

// envParser keeps the first error, so ParseEnv reads like the list of
// variables it reads.
type envParser struct {
	lookup func(string) (string, bool)
	err    error
}

func (p *envParser) has(name string) bool { v, _ := p.lookup(name); return strings.TrimSpace(v) != "" }

func (p *envParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("dist: bad launcher environment: "+format, args...)
	}
}

func (p *envParser) str(name string) string {
	v, ok := p.lookup(name)
	if v = strings.TrimSpace(v); !ok || v == "" {
		p.fail("%s is not set (launch with torchrun, or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)", name)
	}
	return v
}

// int reads a whole number of at least min; a variable that is not
// required is 0 when unset.
func (p *envParser) int(name string, min int, required bool) int {
	v, ok := p.lookup(name)
	if !ok && !required {
		return 0
	}
	if !ok || strings.TrimSpace(v) == "" {
		p.fail("%s is not set (launch with torchrun, or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)", name)
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < min {
		p.fail("%s=%q is not a whole number of at least %d", name, v, min)
		return 0
	}
	return n
}
