package hookedmodel

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/golens/golens/gotch"
	"github.com/golens/golens/gotch/gotchtest"
)

func TestGenerateKVCacheGivesSameTokens(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 21)
	defer m.Free()
	_, tok := randomTokens(t, 2, 3, m.Cfg.DVocab, 22)
	defer tok.Free()
	ctx := context.Background()
	cases := []struct {
		name string
		opts []GenOption
	}{
		{"greedy", []GenOption{Greedy()}},
		{"sampling", []GenOption{Seed(5)}},
		{"temperature top-k", []GenOption{Seed(6), Temperature(0.7), TopK(5)}},
		{"top-p", []GenOption{Seed(7), TopP(0.8)}},
		{"frequency penalty", []GenOption{Seed(8), FreqPenalty(2)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]GenOption{MaxNewTokens(6), StopAtEOS(false)}, tc.opts...)
			withKV, err := m.Generate(ctx, Tokens(tok), opts...)
			if err != nil {
				t.Fatal(err)
			}
			without, err := m.Generate(ctx, Tokens(tok), append(opts, NoKVCache())...)
			if err != nil {
				t.Fatal(err)
			}
			for b := range withKV {
				if len(withKV[b]) != 3+6 {
					t.Errorf("row %d has %d tokens, want 9", b, len(withKV[b]))
				}
				if !slices.Equal(withKV[b], without[b]) {
					t.Errorf("row %d: with the KV cache %v, without %v", b, withKV[b], without[b])
				}
			}
		})
	}
}

func TestGenerateGreedyFollowsArgmax(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 23)
	defer m.Free()
	rows, tok := randomTokens(t, 1, 4, m.Cfg.DVocab, 24)
	defer tok.Free()
	got, err := m.Generate(context.Background(), Tokens(tok), Greedy(), MaxNewTokens(3), StopAtEOS(false))
	if err != nil {
		t.Fatal(err)
	}
	seq := rows[0]
	for range 3 { // the same by hand: argmax of the last position, appended
		x := gotch.MustFromSlice(seq, []int64{1, int64(len(seq))}, gotchtest.Device(t))
		out, err := m.Forward(context.Background(), Tokens(x))
		x.Free()
		if err != nil {
			t.Fatal(err)
		}
		v := gotchtest.Values(t, out.Logits)
		out.Free()
		last := v[len(v)-m.Cfg.DVocab:]
		best := 0
		for i := range last {
			if last[i] > last[best] {
				best = i
			}
		}
		seq = append(slices.Clone(seq), int64(best))
	}
	if !slices.Equal(got[0], seq) {
		t.Errorf("greedy generation %v, by hand %v", got[0], seq)
	}
	top1, err := m.Generate(context.Background(), Tokens(tok), TopK(1), Seed(3), MaxNewTokens(3), StopAtEOS(false))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(top1[0], seq) {
		t.Errorf("top-k 1 sampling %v, greedy %v", top1[0], seq)
	}
}

func TestGenerateStopsAtEOSAndRunsHooks(t *testing.T) {
	gotchtest.CheckLeaks(t)
	m := newTestModel(t, smallConfig(), 25)
	defer m.Free()
	_, tok := randomTokens(t, 1, 2, m.Cfg.DVocab, 26)
	defer tok.Free()
	ctx := context.Background()
	first, err := m.Generate(ctx, Tokens(tok), Greedy(), MaxNewTokens(1), StopAtEOS(false))
	if err != nil {
		t.Fatal(err)
	}
	eos := first[0][2] // the first greedy token: declaring it EOS must stop there
	calls := 0
	count := FwdHook(Name("blocks.0.hook_resid_pre"), func(act *gotch.Tensor, _ string) (*gotch.Tensor, error) {
		calls++
		return nil, nil
	})
	got, err := m.Generate(ctx, Tokens(tok), Greedy(), MaxNewTokens(5), EOSToken(eos), GenHooks(count))
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0]) != 3 || got[0][2] != eos {
		t.Errorf("generation %v did not stop at EOS %d", got[0], eos)
	}
	if calls != 1 {
		t.Errorf("the hook ran %d times, want once (one pass before EOS)", calls)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Generate(cancelled, Tokens(tok), MaxNewTokens(3), StopAtEOS(false)); !errors.Is(err, context.Canceled) {
		t.Errorf("generation under a cancelled context: %v, want context.Canceled", err)
	}
}
