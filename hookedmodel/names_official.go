package hookedmodel

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// TransformerLens's names for the models golens loads, and the training
// checkpoints it offers for some of them.
//
// The table is TransformerLens's OFFICIAL_MODEL_NAMES and MODEL_ALIASES
// (transformer_lens/supported_models.py, commit
// 4cd36aaeb5dad931d085bd5d46a12b402fe15272 of TransformerLensOrg/
// TransformerLens, July 2026) cut to the model_types golens reads: gpt2,
// gpt_neox, llama, mistral, qwen2, gemma and gemma2 (OPT, BLOOM, Phi,
// Qwen3, Gemma 3, ... are left out; their names reach the hub as plain
// "org/name" and fail on their model_type). An alias equal to its
// official name but for case, and repeats, are dropped: names match
// without regard to case, as get_official_model_name lowercases them.
// The checkpoint steps are loading_from_pretrained.py's PYTHIA_CHECKPOINTS,
// PYTHIA_V0_CHECKPOINTS and STANFORD_CRFM_CHECKPOINTS at that commit.

// officialModel is one official name: the Hugging Face repository.
type officialModel struct {
	name      string
	modelType string // config.json's model_type
	aliases   []string
}

var officialModels = []officialModel{
	// model_type gpt2
	{"distilgpt2", "gpt2", []string{"distillgpt2", "distill-gpt2", "distil-gpt2", "gpt2-xs"}},
	{"gpt2", "gpt2", []string{"gpt2-small"}},
	{"gpt2-large", "gpt2", nil},
	{"gpt2-medium", "gpt2", nil},
	{"gpt2-xl", "gpt2", nil},
	{"stanford-crfm/alias-gpt2-small-x21", "gpt2", []string{"stanford-gpt2-small-a", "alias-gpt2-small-x21", "gpt2-mistral-small-a", "gpt2-stanford-small-a"}},
	{"stanford-crfm/arwen-gpt2-medium-x21", "gpt2", []string{"stanford-gpt2-medium-a", "arwen-gpt2-medium-x21", "gpt2-medium-small-a", "gpt2-stanford-medium-a"}},
	{"stanford-crfm/battlestar-gpt2-small-x49", "gpt2", []string{"stanford-gpt2-small-b", "battlestar-gpt2-small-x49", "gpt2-mistral-small-b"}},
	{"stanford-crfm/beren-gpt2-medium-x49", "gpt2", []string{"stanford-gpt2-medium-b", "beren-gpt2-medium-x49", "gpt2-medium-small-b", "gpt2-stanford-medium-b"}},
	{"stanford-crfm/caprica-gpt2-small-x81", "gpt2", []string{"stanford-gpt2-small-c", "caprica-gpt2-small-x81", "gpt2-mistral-small-c", "gpt2-stanford-small-c"}},
	{"stanford-crfm/celebrimbor-gpt2-medium-x81", "gpt2", []string{"stanford-gpt2-medium-c", "celebrimbor-gpt2-medium-x81", "gpt2-medium-small-c"}},
	{"stanford-crfm/darkmatter-gpt2-small-x343", "gpt2", []string{"stanford-gpt2-small-d", "darkmatter-gpt2-small-x343", "gpt2-mistral-small-d"}},
	{"stanford-crfm/durin-gpt2-medium-x343", "gpt2", []string{"stanford-gpt2-medium-d", "durin-gpt2-medium-x343", "gpt2-medium-small-d", "gpt2-stanford-medium-d"}},
	{"stanford-crfm/eowyn-gpt2-medium-x777", "gpt2", []string{"stanford-gpt2-medium-e", "eowyn-gpt2-medium-x777", "gpt2-medium-small-e", "gpt2-stanford-medium-e"}},
	{"stanford-crfm/expanse-gpt2-small-x777", "gpt2", []string{"stanford-gpt2-small-e", "expanse-gpt2-small-x777", "gpt2-mistral-small-e"}},
	// model_type gpt_neox
	{"EleutherAI/gpt-neox-20b", "gpt_neox", []string{"gpt-neox-20b", "gpt-neox", "neox"}},
	{"EleutherAI/pythia-1.4b", "gpt_neox", []string{"pythia-1.4b", "EleutherAI/pythia-1.3b", "pythia-1.3b"}},
	{"EleutherAI/pythia-1.4b-deduped", "gpt_neox", []string{"pythia-1.4b-deduped", "EleutherAI/pythia-1.3b-deduped", "pythia-1.3b-deduped"}},
	{"EleutherAI/pythia-1.4b-deduped-v0", "gpt_neox", []string{"pythia-1.4b-deduped-v0", "EleutherAI/pythia-1.3b-deduped-v0", "pythia-1.3b-deduped-v0"}},
	{"EleutherAI/pythia-1.4b-v0", "gpt_neox", []string{"pythia-1.4b-v0", "EleutherAI/pythia-1.3b-v0", "pythia-1.3b-v0"}},
	{"EleutherAI/pythia-12b", "gpt_neox", []string{"pythia-12b", "EleutherAI/pythia-13b", "pythia-13b"}},
	{"EleutherAI/pythia-12b-deduped", "gpt_neox", []string{"pythia-12b-deduped", "EleutherAI/pythia-13b-deduped", "pythia-13b-deduped"}},
	{"EleutherAI/pythia-12b-deduped-v0", "gpt_neox", []string{"pythia-12b-deduped-v0", "EleutherAI/pythia-13b-deduped-v0", "pythia-13b-deduped-v0"}},
	{"EleutherAI/pythia-12b-v0", "gpt_neox", []string{"pythia-12b-v0", "EleutherAI/pythia-13b-v0", "pythia-13b-v0"}},
	{"EleutherAI/pythia-14m", "gpt_neox", []string{"pythia-14m"}},
	{"EleutherAI/pythia-160m", "gpt_neox", []string{"pythia-160m", "EleutherAI/pythia-125m", "pythia-125m"}},
	{"EleutherAI/pythia-160m-deduped", "gpt_neox", []string{"pythia-160m-deduped", "EleutherAI/pythia-125m-deduped", "pythia-125m-deduped"}},
	{"EleutherAI/pythia-160m-deduped-v0", "gpt_neox", []string{"pythia-160m-deduped-v0", "EleutherAI/pythia-125m-deduped-v0", "pythia-125m-deduped-v0"}},
	{"EleutherAI/pythia-160m-seed1", "gpt_neox", []string{"pythia-160m-seed1", "EleutherAI/pythia-125m-seed1", "pythia-125m-seed1"}},
	{"EleutherAI/pythia-160m-seed2", "gpt_neox", []string{"pythia-160m-seed2", "EleutherAI/pythia-125m-seed2", "pythia-125m-seed2"}},
	{"EleutherAI/pythia-160m-seed3", "gpt_neox", []string{"pythia-160m-seed3", "EleutherAI/pythia-125m-seed3", "pythia-125m-seed3"}},
	{"EleutherAI/pythia-160m-v0", "gpt_neox", []string{"pythia-160m-v0", "EleutherAI/pythia-125m-v0", "pythia-125m-v0"}},
	{"EleutherAI/pythia-1b", "gpt_neox", []string{"pythia-1b", "EleutherAI/pythia-800m", "pythia-800m"}},
	{"EleutherAI/pythia-1b-deduped", "gpt_neox", []string{"pythia-1b-deduped", "EleutherAI/pythia-800m-deduped", "pythia-800m-deduped"}},
	{"EleutherAI/pythia-1b-deduped-v0", "gpt_neox", []string{"pythia-1b-deduped-v0", "EleutherAI/pythia-800m-deduped-v0", "pythia-800m-deduped-v0"}},
	{"EleutherAI/pythia-1b-v0", "gpt_neox", []string{"pythia-1b-v0", "EleutherAI/pythia-800m-v0", "pythia-800m-v0"}},
	{"EleutherAI/pythia-2.8b", "gpt_neox", []string{"pythia-2.8b", "EleutherAI/pythia-2.7b", "pythia-2.7b"}},
	{"EleutherAI/pythia-2.8b-deduped", "gpt_neox", []string{"pythia-2.8b-deduped", "EleutherAI/pythia-2.7b-deduped", "pythia-2.7b-deduped"}},
	{"EleutherAI/pythia-2.8b-deduped-v0", "gpt_neox", []string{"pythia-2.8b-deduped-v0", "EleutherAI/pythia-2.7b-deduped-v0", "pythia-2.7b-deduped-v0"}},
	{"EleutherAI/pythia-2.8b-v0", "gpt_neox", []string{"pythia-2.8b-v0", "EleutherAI/pythia-2.7b-v0", "pythia-2.7b-v0"}},
	{"EleutherAI/pythia-31m", "gpt_neox", []string{"pythia-31m"}},
	{"EleutherAI/pythia-410m", "gpt_neox", []string{"pythia-410m", "EleutherAI/pythia-350m", "pythia-350m"}},
	{"EleutherAI/pythia-410m-deduped", "gpt_neox", []string{"pythia-410m-deduped", "EleutherAI/pythia-350m-deduped", "pythia-350m-deduped"}},
	{"EleutherAI/pythia-410m-deduped-v0", "gpt_neox", []string{"pythia-410m-deduped-v0", "EleutherAI/pythia-350m-deduped-v0", "pythia-350m-deduped-v0"}},
	{"EleutherAI/pythia-410m-v0", "gpt_neox", []string{"pythia-410m-v0", "EleutherAI/pythia-350m-v0", "pythia-350m-v0"}},
	{"EleutherAI/pythia-6.9b", "gpt_neox", []string{"pythia-6.9b", "EleutherAI/pythia-6.7b", "pythia-6.7b"}},
	{"EleutherAI/pythia-6.9b-deduped", "gpt_neox", []string{"pythia-6.9b-deduped", "EleutherAI/pythia-6.7b-deduped", "pythia-6.7b-deduped"}},
	{"EleutherAI/pythia-6.9b-deduped-v0", "gpt_neox", []string{"pythia-6.9b-deduped-v0", "EleutherAI/pythia-6.7b-deduped-v0", "pythia-6.7b-deduped-v0"}},
	{"EleutherAI/pythia-6.9b-v0", "gpt_neox", []string{"pythia-6.9b-v0", "EleutherAI/pythia-6.7b-v0", "pythia-6.7b-v0"}},
	{"EleutherAI/pythia-70m", "gpt_neox", []string{"pythia-70m", "pythia", "EleutherAI/pythia-19m", "pythia-19m"}},
	{"EleutherAI/pythia-70m-deduped", "gpt_neox", []string{"pythia-70m-deduped", "EleutherAI/pythia-19m-deduped", "pythia-19m-deduped"}},
	{"EleutherAI/pythia-70m-deduped-v0", "gpt_neox", []string{"pythia-70m-deduped-v0", "EleutherAI/pythia-19m-deduped-v0", "pythia-19m-deduped-v0"}},
	{"EleutherAI/pythia-70m-v0", "gpt_neox", []string{"pythia-70m-v0", "pythia-v0", "EleutherAI/pythia-19m-v0", "pythia-19m-v0"}},
	{"stabilityai/stablelm-base-alpha-3b", "gpt_neox", []string{"stablelm-base-alpha-3b", "stablelm-base-3b"}},
	{"stabilityai/stablelm-base-alpha-7b", "gpt_neox", []string{"stablelm-base-alpha-7b", "stablelm-base-7b"}},
	{"stabilityai/stablelm-tuned-alpha-3b", "gpt_neox", []string{"stablelm-tuned-alpha-3b", "stablelm-tuned-3b"}},
	{"stabilityai/stablelm-tuned-alpha-7b", "gpt_neox", []string{"stablelm-tuned-alpha-7b", "stablelm-tuned-7b"}},
	// model_type llama
	{"01-ai/Yi-34B", "llama", []string{"yi-34b"}},
	{"01-ai/Yi-34B-Chat", "llama", []string{"yi-34b-chat"}},
	{"01-ai/Yi-6B", "llama", []string{"yi-6b"}},
	{"01-ai/Yi-6B-Chat", "llama", []string{"yi-6b-chat"}},
	{"codellama/CodeLlama-7b-hf", "llama", []string{"CodeLlamallama-2-7b"}},
	{"codellama/CodeLlama-7b-Instruct-hf", "llama", []string{"CodeLlama-7b-instruct"}},
	{"codellama/CodeLlama-7b-Python-hf", "llama", []string{"CodeLlama-7b-python"}},
	{"meta-llama/Llama-2-13b-chat-hf", "llama", []string{"Llama-2-13b-chat"}},
	{"meta-llama/Llama-2-13b-hf", "llama", []string{"Llama-2-13b"}},
	{"meta-llama/Llama-2-70b-chat-hf", "llama", []string{"Llama-2-70b-chat", "meta-llama-2-70b-chat-hf"}},
	{"meta-llama/Llama-2-7b-chat-hf", "llama", []string{"Llama-2-7b-chat"}},
	{"meta-llama/Llama-2-7b-hf", "llama", []string{"Llama-2-7b"}},
	{"meta-llama/Llama-3.1-70B", "llama", nil},
	{"meta-llama/Llama-3.1-70B-Instruct", "llama", nil},
	{"meta-llama/Llama-3.1-8B", "llama", nil},
	{"meta-llama/Llama-3.1-8B-Instruct", "llama", nil},
	{"meta-llama/Llama-3.2-1B", "llama", nil},
	{"meta-llama/Llama-3.2-1B-Instruct", "llama", nil},
	{"meta-llama/Llama-3.2-3B", "llama", nil},
	{"meta-llama/Llama-3.2-3B-Instruct", "llama", nil},
	{"meta-llama/Llama-3.3-70B-Instruct", "llama", nil},
	{"meta-llama/Meta-Llama-3-70B", "llama", nil},
	{"meta-llama/Meta-Llama-3-70B-Instruct", "llama", nil},
	{"meta-llama/Meta-Llama-3-8B", "llama", nil},
	{"meta-llama/Meta-Llama-3-8B-Instruct", "llama", nil},
	// model_type mistral
	{"mistralai/Mistral-7B-Instruct-v0.1", "mistral", []string{"mistral-7b-instruct"}},
	{"mistralai/Mistral-7B-v0.1", "mistral", []string{"mistral-7b"}},
	{"mistralai/Mistral-Nemo-Base-2407", "mistral", []string{"mistral-nemo-base-2407"}},
	{"mistralai/Mistral-Small-24B-Base-2501", "mistral", nil},
	// model_type qwen2
	{"Qwen/Qwen1.5-0.5B", "qwen2", []string{"qwen1.5-0.5b"}},
	{"Qwen/Qwen1.5-0.5B-Chat", "qwen2", []string{"qwen1.5-0.5b-chat"}},
	{"Qwen/Qwen1.5-1.8B", "qwen2", []string{"qwen1.5-1.8b"}},
	{"Qwen/Qwen1.5-1.8B-Chat", "qwen2", []string{"qwen1.5-1.8b-chat"}},
	{"Qwen/Qwen1.5-14B", "qwen2", []string{"qwen1.5-14b"}},
	{"Qwen/Qwen1.5-14B-Chat", "qwen2", []string{"qwen1.5-14b-chat"}},
	{"Qwen/Qwen1.5-4B", "qwen2", []string{"qwen1.5-4b"}},
	{"Qwen/Qwen1.5-4B-Chat", "qwen2", []string{"qwen1.5-4b-chat"}},
	{"Qwen/Qwen1.5-7B", "qwen2", []string{"qwen1.5-7b"}},
	{"Qwen/Qwen1.5-7B-Chat", "qwen2", []string{"qwen1.5-7b-chat"}},
	{"Qwen/Qwen2-0.5B", "qwen2", []string{"qwen2-0.5b"}},
	{"Qwen/Qwen2-0.5B-Instruct", "qwen2", []string{"qwen2-0.5b-instruct"}},
	{"Qwen/Qwen2-1.5B", "qwen2", []string{"qwen2-1.5b"}},
	{"Qwen/Qwen2-1.5B-Instruct", "qwen2", []string{"qwen2-1.5b-instruct"}},
	{"Qwen/Qwen2-7B", "qwen2", []string{"qwen2-7b"}},
	{"Qwen/Qwen2-7B-Instruct", "qwen2", []string{"qwen2-7b-instruct"}},
	{"Qwen/Qwen2.5-0.5B", "qwen2", []string{"qwen2.5-0.5b"}},
	{"Qwen/Qwen2.5-0.5B-Instruct", "qwen2", []string{"qwen2.5-0.5b-instruct"}},
	{"Qwen/Qwen2.5-1.5B", "qwen2", []string{"qwen2.5-1.5b"}},
	{"Qwen/Qwen2.5-1.5B-Instruct", "qwen2", []string{"qwen2.5-1.5b-instruct"}},
	{"Qwen/Qwen2.5-14B", "qwen2", []string{"qwen2.5-14b"}},
	{"Qwen/Qwen2.5-14B-Instruct", "qwen2", []string{"qwen2.5-14b-instruct"}},
	{"Qwen/Qwen2.5-32B", "qwen2", []string{"qwen2.5-32b"}},
	{"Qwen/Qwen2.5-32B-Instruct", "qwen2", []string{"qwen2.5-32b-instruct"}},
	{"Qwen/Qwen2.5-3B", "qwen2", []string{"qwen2.5-3b"}},
	{"Qwen/Qwen2.5-3B-Instruct", "qwen2", []string{"qwen2.5-3b-instruct"}},
	{"Qwen/Qwen2.5-72B", "qwen2", []string{"qwen2.5-72b"}},
	{"Qwen/Qwen2.5-72B-Instruct", "qwen2", []string{"qwen2.5-72b-instruct"}},
	{"Qwen/Qwen2.5-7B", "qwen2", []string{"qwen2.5-7b"}},
	{"Qwen/Qwen2.5-7B-Instruct", "qwen2", []string{"qwen2.5-7b-instruct"}},
	{"Qwen/QwQ-32B-Preview", "qwen2", []string{"qwen-32b-preview"}},
	// model_type gemma
	{"google/gemma-2b", "gemma", []string{"gemma-2b"}},
	{"google/gemma-2b-it", "gemma", []string{"gemma-2b-it"}},
	{"google/gemma-7b", "gemma", []string{"gemma-7b"}},
	{"google/gemma-7b-it", "gemma", []string{"gemma-7b-it"}},
	// model_type gemma2
	{"google/gemma-2-27b", "gemma2", []string{"gemma-2-27b"}},
	{"google/gemma-2-27b-it", "gemma2", []string{"gemma-2-27b-it"}},
	{"google/gemma-2-2b", "gemma2", []string{"gemma-2-2b"}},
	{"google/gemma-2-2b-it", "gemma2", []string{"gemma-2-2b-it"}},
	{"google/gemma-2-9b", "gemma2", []string{"gemma-2-9b"}},
	{"google/gemma-2-9b-it", "gemma2", []string{"gemma-2-9b-it"}},
}

// movedRepos are repositories the hub now keeps under another name, which
// a cache written by an older huggingface_hub may hold instead.
var movedRepos = map[string]string{
	"gpt2": "openai-community/gpt2", "gpt2-medium": "openai-community/gpt2-medium",
	"gpt2-large": "openai-community/gpt2-large", "gpt2-xl": "openai-community/gpt2-xl",
	"distilgpt2": "distilbert/distilgpt2",
}

// officialIndex maps every official name and alias, lowercased, to its
// entry.
var officialIndex = sync.OnceValue(func() map[string]*officialModel {
	idx := map[string]*officialModel{}
	for i := range officialModels {
		m := &officialModels[i]
		for _, n := range append([]string{m.name}, m.aliases...) {
			idx[strings.ToLower(n)] = m
		}
	}
	return idx
})

// official finds TransformerLens's name or alias name (any case).
func official(name string) (*officialModel, bool) {
	m, ok := officialIndex()[strings.ToLower(name)]
	return m, ok
}

// OfficialModelNames lists, sorted, the TransformerLens model names that
// Load resolves through the Hugging Face cache and hub (their aliases, such
// as pythia-70m or gpt2-small, work too).
func OfficialModelNames() []string {
	names := make([]string, len(officialModels))
	for i, m := range officialModels {
		names[i] = m.name
	}
	slices.Sort(names)
	return names
}

// trainingCheckpoints are the intermediate checkpoints of a model, by
// label (the training step), and the hub revision that holds each.
type trainingCheckpoints struct {
	labels   []int
	revision string // a format of the label
}

// steps lists from, from+by, ... up to to.
func steps(from, to, by int) []int {
	var s []int
	for v := from; v <= to; v += by {
		s = append(s, v)
	}
	return s
}

var (
	// Pythia: log-spaced early steps, then every 1000 up to 143000.
	pythiaCheckpoints   = trainingCheckpoints{append([]int{0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512}, steps(1000, 143000, 1000)...), "step%d"}
	pythiaV0Checkpoints = trainingCheckpoints{steps(1000, 143000, 1000), "step%d"}
	stanfordCheckpoints = trainingCheckpoints{slices.Concat(steps(0, 90, 10), steps(100, 1950, 50), steps(2000, 19900, 100), steps(20000, 400000, 1000)), "checkpoint-%d"}
)

// checkpoints are the training checkpoints of the official model m, as
// TransformerLens's get_checkpoint_labels gives them; false for a model
// without.
func (m *officialModel) checkpoints() (trainingCheckpoints, bool) {
	switch {
	case strings.HasPrefix(m.name, "stanford-crfm/"):
		return stanfordCheckpoints, true
	case strings.HasPrefix(m.name, "EleutherAI/pythia") && strings.Contains(m.name, "v0"):
		return pythiaV0Checkpoints, true
	case strings.HasPrefix(m.name, "EleutherAI/pythia"):
		return pythiaCheckpoints, true
	}
	return trainingCheckpoints{}, false
}

// checkpointRevision is the hub revision of the model's checkpoint chosen
// by index (into its labels) or by value (a label), as from_pretrained's
// checkpoint_index and checkpoint_value choose it.
func (m *officialModel) checkpointRevision(index, value *int) (string, error) {
	cks, ok := m.checkpoints()
	if !ok {
		return "", fmt.Errorf("%s has no training checkpoints (TransformerLens offers them for Pythia and the Stanford CRFM GPT-2s)", m.name)
	}
	label := 0
	switch {
	case index != nil:
		i := *index
		if i < 0 { // a Python index from the end
			i += len(cks.labels)
		}
		if i < 0 || i >= len(cks.labels) {
			return "", fmt.Errorf("checkpoint index %d of %s: out of range: it has %d checkpoints (0 to %d)", *index, m.name, len(cks.labels), len(cks.labels)-1)
		}
		label = cks.labels[i]
	case value != nil:
		if !slices.Contains(cks.labels, *value) {
			return "", fmt.Errorf("checkpoint value %d of %s: no such checkpoint (steps %d, %d, ... %d)", *value, m.name, cks.labels[0], cks.labels[1], cks.labels[len(cks.labels)-1])
		}
		label = *value
	}
	return fmt.Sprintf(cks.revision, label), nil
}

// WithRevision loads a model named by its hub repository at a branch, tag
// or commit (default "main"), as from_pretrained's revision: through the
// cache's refs/{revision} when cached, as huggingface_hub resolves it.
func WithRevision(rev string) Option { return func(o *options) { o.revision = rev } }

// WithCheckpointIndex loads the training checkpoint at index i of the
// model's list (Pythia's and the Stanford CRFM GPT-2s'; a negative i counts
// from the end), as from_pretrained's checkpoint_index: Pythia's index 0 is
// step 0, revision step0 on the hub.
func WithCheckpointIndex(i int) Option { return func(o *options) { o.checkpointIndex = &i } }

// WithCheckpointValue loads the training checkpoint of step v, as
// from_pretrained's checkpoint_value: Pythia's step 1000 is revision
// step1000 on the hub.
func WithCheckpointValue(v int) Option { return func(o *options) { o.checkpointValue = &v } }

// revisionOf is the hub revision o asks for of the official model m (nil:
// a repository outside TransformerLens's names): WithRevision's, or a
// training checkpoint's; "" for the default.
func (o options) revisionOf(m *officialModel) (string, error) {
	picks := 0
	for _, set := range []bool{o.revision != "", o.checkpointIndex != nil, o.checkpointValue != nil} {
		if set {
			picks++
		}
	}
	switch {
	case picks > 1:
		return "", fmt.Errorf("a revision, a checkpoint index and a checkpoint value each pick a version: give one")
	case o.checkpointIndex == nil && o.checkpointValue == nil:
		return o.revision, nil
	case m == nil:
		return "", fmt.Errorf("training checkpoints are TransformerLens's, for Pythia and the Stanford CRFM GPT-2s; for another repository give its revision")
	}
	return m.checkpointRevision(o.checkpointIndex, o.checkpointValue)
}
