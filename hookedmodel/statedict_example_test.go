package hookedmodel_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/golens/golens/hookedmodel"
)

// A state dict in TransformerLens's layout moves weights between models
// of one config, in golens and in Python (model.load_state_dict).
func ExampleHookedTransformer_SaveStateDict() {
	dir, err := os.MkdirTemp("", "state-dict")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")

	src := tinyModel()
	defer src.Free()
	if err := src.SaveStateDict(path); err != nil {
		log.Fatal(err)
	}

	dst, err := hookedmodel.New(src.Config(), hookedmodel.WithSeed(7))
	if err != nil {
		log.Fatal(err)
	}
	defer dst.Free()
	if err := dst.LoadStateDictFile(path); err != nil {
		log.Fatal(err)
	}
	a, _ := src.W_Q()
	b, _ := dst.W_Q()
	fmt.Println("same W_Q:", a.MustAllClose(b, 0, 0))

	// from_pretrained's state dicts have no LayerNorm weights: they go into
	// a processed model (normalization_type LNPre), not this one.
	if err := src.Process(hookedmodel.DefaultProcessing); err != nil {
		log.Fatal(err)
	}
	if err := src.SaveStateDict(path); err != nil {
		log.Fatal(err)
	}
	fmt.Println(dst.LoadStateDictFile(path) != nil)
	// Output:
	// same W_Q: true
	// true
}

func ExampleHookedTransformer_String() {
	cfg := hookedmodel.DefaultConfig()
	cfg.NLayers, cfg.DModel, cfg.DHead, cfg.NCtx, cfg.DVocab = 1, 8, 4, 16, 10
	cfg.AttnOnly, cfg.NormalizationType = true, "LNPre"
	m, err := hookedmodel.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Free()
	fmt.Println(m) // print(model)
	// Output:
	// HookedTransformer(
	//   (embed): Embed(W_E: [10, 8])
	//   (hook_embed): HookPoint(name='hook_embed')
	//   (pos_embed): PosEmbed(W_pos: [16, 8])
	//   (hook_pos_embed): HookPoint(name='hook_pos_embed')
	//   (blocks): TypedModuleList(
	//     (0): TransformerBlock(
	//       (ln1): LayerNormPre(
	//         (hook_scale): HookPoint(name='blocks.0.ln1.hook_scale')
	//         (hook_normalized): HookPoint(name='blocks.0.ln1.hook_normalized')
	//       )
	//       (attn): Attention(
	//         W_Q: [2, 8, 4]
	//         W_O: [2, 4, 8]
	//         b_Q: [2, 4]
	//         b_O: [8]
	//         W_K: [2, 8, 4]
	//         W_V: [2, 8, 4]
	//         b_K: [2, 4]
	//         b_V: [2, 4]
	//         (hook_k): HookPoint(name='blocks.0.attn.hook_k')
	//         (hook_q): HookPoint(name='blocks.0.attn.hook_q')
	//         (hook_v): HookPoint(name='blocks.0.attn.hook_v')
	//         (hook_z): HookPoint(name='blocks.0.attn.hook_z')
	//         (hook_attn_scores): HookPoint(name='blocks.0.attn.hook_attn_scores')
	//         (hook_pattern): HookPoint(name='blocks.0.attn.hook_pattern')
	//       )
	//       (hook_attn_out): HookPoint(name='blocks.0.hook_attn_out')
	//       (hook_resid_pre): HookPoint(name='blocks.0.hook_resid_pre')
	//       (hook_resid_post): HookPoint(name='blocks.0.hook_resid_post')
	//     )
	//   )
	//   (ln_final): LayerNormPre(
	//     (hook_scale): HookPoint(name='ln_final.hook_scale')
	//     (hook_normalized): HookPoint(name='ln_final.hook_normalized')
	//   )
	//   (unembed): Unembed(
	//     W_U: [8, 10]
	//     b_U: [10]
	//   )
	// )
}
