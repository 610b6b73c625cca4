package hookedmodel

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

func TestLayerOf(t *testing.T) {
	for _, tc := range []struct {
		name  string
		layer int
		ok    bool
	}{
		{"blocks.0.hook_resid_pre", 0, true},
		{"blocks.3.attn.hook_z", 3, true},
		{"blocks.11.ln1.hook_scale", 11, true},
		{"blocks.12.mlp.hook_post", 12, true},
		{"blocks.7.hook_resid_post_grad", 7, true},
		{"hook_embed", 0, false},
		{"hook_pos_embed", 0, false},
		{"ln_final.hook_scale", 0, false},
		{"ln_final.hook_normalized", 0, false},
		{"", 0, false},
		{"blocks", 0, false},
		{"blocks.", 0, false},
		{"blocks.3", 0, false},
		{"blocks..hook_z", 0, false},
		{"blocks.x.hook_z", 0, false},
		{"blocks.-1.hook_z", 0, false},
		{"blocks.+1.hook_z", 0, false},
		{"blocks.01.hook_z", 0, false},
		{"blocks.1e3.hook_z", 0, false},
		{"blocks.99999999999999999999999.hook_z", 0, false},
		{"xblocks.1.hook_z", 0, false},
		{"Blocks.1.hook_z", 0, false},
	} {
		if l, ok := LayerOf(tc.name); l != tc.layer || ok != tc.ok {
			t.Errorf("LayerOf(%q) = %d, %v; want %d, %v", tc.name, l, ok, tc.layer, tc.ok)
		}
	}
}

// TestLayerOfHookPoints: a hook on every hook point of a model reads its
// layer with LayerOf: each block's points give their block, the rest none.
func TestLayerOfHookPoints(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 1)
	defer m.Free()
	var mu sync.Mutex
	seen := map[string]int{}
	hook := FwdHook(Match(func(string) bool { return true }), func(_ *gotch.Tensor, name string) (*gotch.Tensor, error) {
		l, ok := LayerOf(name)
		if !ok {
			l = -1
		}
		mu.Lock()
		seen[name] = l
		mu.Unlock()
		return nil, nil
	})
	tokens := gotch.MustFromSlice([]int64{1, 2, 3}, []int64{1, 3}, gotchtest.Device(t))
	defer tokens.Free()
	out, err := m.RunWithHooks(context.Background(), Tokens(tokens), []Hook{hook})
	if err != nil {
		t.Fatal(err)
	}
	out.Free()
	names := m.HookNames()
	if len(seen) == 0 {
		t.Fatal("the hook was never called")
	}
	for _, name := range names {
		l, called := seen[name]
		if !called {
			continue // a hook point this pass does not reach
		}
		want := -1
		if rest, ok := strings.CutPrefix(name, "blocks."); ok {
			fmt.Sscanf(rest, "%d.", &want)
		}
		if l != want || (want >= m.Cfg.NLayers) {
			t.Errorf("%s: LayerOf gives %d, want %d (n_layers %d)", name, l, want, m.Cfg.NLayers)
		}
	}
	for _, l := range []int{0, m.Cfg.NLayers - 1} {
		if seen[fmt.Sprintf("blocks.%d.hook_resid_pre", l)] != l {
			t.Errorf("blocks.%d.hook_resid_pre: LayerOf gives %d", l, seen[fmt.Sprintf("blocks.%d.hook_resid_pre", l)])
		}
	}
}

func ExampleLayerOf() {
	for _, name := range []string{"blocks.3.attn.hook_z", "blocks.0.ln1.hook_scale", "hook_embed"} {
		l, ok := LayerOf(name)
		fmt.Println(name, l, ok)
	}
	// Output:
	// blocks.3.attn.hook_z 3 true
	// blocks.0.ln1.hook_scale 0 true
	// hook_embed 0 false
}
