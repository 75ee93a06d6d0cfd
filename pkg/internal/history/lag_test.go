package history

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestLags(t *testing.T) {
	inv := func(key string, v, start, end int64) Op {
		return Op{Kind: Invalidate, Key: key, Version: v, Start: start, End: end, OK: true, Proc: "w"}
	}
	read := func(key string, v, start, end int64) Op {
		return Op{Kind: Read, Key: key, Version: v, Start: start, End: end, OK: true, Proc: "r"}
	}
	tests := []struct {
		name string
		ops  []Op
		want []time.Duration
	}{
		{"no stale read", []Op{read("k", 1, 10, 20), inv("k", 2, 100, 120), read("k", 2, 130, 140), read("k", 3, 200, 210)}, []time.Duration{0}},
		{"reads overlapping the invalidation do not count", []Op{inv("k", 2, 100, 120), read("k", 1, 110, 150), read("k", 1, 120, 150)}, []time.Duration{0}},
		{"several stale reads: the latest start", []Op{inv("k", 2, 100, 120), read("k", 1, 125, 130), read("k", 1, 160, 170), read("k", 1, 140, 200), read("k", 2, 180, 190)}, []time.Duration{40}},
		{"a read counts against every later invalidation it is older than", []Op{
			inv("k", 2, 100, 120), inv("k", 3, 130, 140), inv("k", 4, 150, 160),
			read("k", 2, 170, 180), // older than v3 and v4, not v2
			read("k", 1, 145, 150), // older than all; after v2's and v3's end only
		}, []time.Duration{25, 30, 10}},
		{"failed operations are ignored", []Op{
			inv("k", 2, 100, 120),
			{Kind: Invalidate, Key: "k", Version: 3, Start: 130, End: 140, Proc: "w"},
			{Kind: Read, Key: "k", Version: 1, Start: 200, End: 210, Proc: "r"},
			read("k", 2, 150, 160),
		}, []time.Duration{0}},
		{"other keys do not count", []Op{inv("k", 2, 100, 120), read("j", 1, 200, 210), inv("j", 5, 0, 10)}, []time.Duration{0, 190}},
		{"no reads at all", []Op{inv("k", 2, 100, 120)}, []time.Duration{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Lags(tc.ops); !slices.Equal(got, tc.want) {
				t.Fatalf("Lags = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLagsAgreeWithCheckWithin: the largest lag is above a bound exactly when the
// checker finds a stale read with that bound.
func TestLagsAgreeWithCheckWithin(t *testing.T) {
	ops := []Op{
		{Kind: Invalidate, Key: "k", Version: 2, Start: 100, End: 120, OK: true},
		{Kind: Read, Key: "k", Version: 1, Start: 150, End: 160, OK: true},
	}
	bumps := []Bump{{"k", 1, 0}, {"k", 2, 100}}
	lag := Lags(ops)[0]
	if lag != 30 {
		t.Fatalf("lag %v, want 30ns", lag)
	}
	for _, bound := range []time.Duration{0, 29, 30, 31} {
		stale := len(CheckWithin(ops, bumps, bound)) > 0
		if stale != (lag > bound) {
			t.Errorf("bound %v: checker stale %v, lag %v", bound, stale, lag)
		}
	}
}

func TestSummarizeLags(t *testing.T) {
	if s := SummarizeLags(nil); s != (LagSummary{}) {
		t.Fatalf("of nothing: %+v", s)
	}
	lags := make([]time.Duration, 200)
	for i := range lags {
		lags[i] = time.Duration(200-i) * time.Millisecond // 200 ms down to 1 ms; sorted: 0, 0, 1, ..., 198 ms
	}
	lags[0], lags[1] = 0, 0
	want := LagSummary{N: 200, Stale: 198, P50: 98 * time.Millisecond, P99: 196 * time.Millisecond, Max: 198 * time.Millisecond}
	if s := SummarizeLags(lags); s != want {
		t.Fatalf("SummarizeLags = %+v, want %+v", s, want)
	}
	if lags[0] != 0 || lags[2] != 198*time.Millisecond {
		t.Fatal("SummarizeLags reordered its argument")
	}
}

// TestLagsMatchTheDefinition compares Lags on random histories with the definition
// computed read by read.
func TestLagsMatchTheDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var ops []Op
		for range 1 + rng.IntN(60) {
			start := rng.Int64N(1000)
			op := Op{Key: string(rune('a' + rng.IntN(3))), Version: rng.Int64N(6), Start: start, End: start + rng.Int64N(50), OK: rng.IntN(8) > 0}
			op.Kind = Read
			if rng.IntN(3) == 0 {
				op.Kind = Invalidate
			}
			ops = append(ops, op)
		}
		var want []time.Duration
		for _, w := range ops {
			if w.Kind != Invalidate || !w.OK {
				continue
			}
			lag := time.Duration(0)
			for _, r := range ops {
				if r.Kind == Read && r.OK && r.Key == w.Key && r.Version < w.Version && r.Start > w.End {
					lag = max(lag, time.Duration(r.Start-w.End))
				}
			}
			want = append(want, lag)
		}
		if got := Lags(ops); !slices.Equal(got, want) {
			t.Fatalf("Lags = %v, want %v, of %+v", got, want, ops)
		}
	}
}
