package dist_test

import (
	"strings"
	"testing"

	"github.com/golens/golens/backend/dist"
)

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// TestParseEnv: what torchrun and srun set (their documented variables),
// and an error naming the variable for each bad or missing one.
func TestParseEnv(t *testing.T) {
	torchrun := map[string]string{
		"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
		"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500",
		"TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "2", "TORCHELASTIC_RUN_ID": "job7",
	}
	e, err := dist.ParseEnv(lookupIn(torchrun))
	if err != nil {
		t.Fatal(err)
	}
	want := dist.Env{Rank: 3, WorldSize: 4, LocalRank: 1, LocalWorldSize: 2, MasterAddr: "10.0.0.1", MasterPort: 29500, AgentStore: true, RestartCount: 2, RunID: "job7"}
	if e != want {
		t.Errorf("torchrun's variables: got %+v, want %+v", e, want)
	}
	slurm := map[string]string{"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "MASTER_ADDR": "node1", "MASTER_PORT": "29500"}
	e, err = dist.ParseEnv(lookupIn(slurm))
	if err != nil {
		t.Fatal(err)
	}
	if want := (dist.Env{Rank: 5, WorldSize: 8, LocalRank: 1, MasterAddr: "node1", MasterPort: 29500}); e != want {
		t.Errorf("srun's variables: got %+v, want %+v", e, want)
	}
	for _, c := range []struct {
		name   string
		change map[string]string // "" deletes
		want   string
	}{
		{"no rank", map[string]string{"RANK": ""}, "RANK is not set"},
		{"no world size", map[string]string{"WORLD_SIZE": ""}, "WORLD_SIZE is not set"},
		{"no master", map[string]string{"MASTER_ADDR": ""}, "MASTER_ADDR is not set"},
		{"bad rank", map[string]string{"RANK": "two"}, `RANK="two" is not a whole number`},
		{"zero world", map[string]string{"WORLD_SIZE": "0"}, `WORLD_SIZE="0" is not a whole number of at least 1`},
		{"rank too big", map[string]string{"RANK": "4"}, "rank 4 is not below the world size 4"},
		{"bad port", map[string]string{"MASTER_PORT": "70000"}, "MASTER_PORT=70000 is not a port"},
		{"bad restart count", map[string]string{"TORCHELASTIC_RESTART_COUNT": "x"}, "TORCHELASTIC_RESTART_COUNT"},
	} {
		env := map[string]string{}
		for k, v := range torchrun {
			env[k] = v
		}
		for k, v := range c.change {
			if v == "" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		_, err := dist.ParseEnv(lookupIn(env))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad launcher environment") {
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
		}
	}
}
