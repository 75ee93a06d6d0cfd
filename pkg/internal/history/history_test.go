package history

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	bumps := []Bump{{"k", 1, 0}, {"k", 2, 100}, {"k", 3, 300}}
	inv := func(v, start, end int64) Op {
		return Op{Kind: Invalidate, Key: "k", Version: v, Start: start, End: end, OK: true, Proc: "w"}
	}
	read := func(v, start, end int64) Op {
		return Op{Kind: Read, Key: "k", Version: v, Start: start, End: end, OK: true, Proc: "r"}
	}
	tests := []struct {
		name string
		ops  []Op
		want string // "" for no violation, else a word of the reason
	}{
		{"fresh read after invalidation", []Op{inv(2, 110, 120), read(2, 130, 140)}, ""},
		{"stale read after invalidation", []Op{inv(2, 110, 120), read(1, 130, 140)}, "stale"},
		{"read overlapping the invalidation may be old", []Op{inv(2, 110, 120), read(1, 115, 140)}, ""},
		{"read starting at the invalidation's end may be old", []Op{inv(2, 110, 120), read(1, 120, 140)}, ""},
		{"failed invalidation promises nothing", []Op{{Kind: Invalidate, Key: "k", Version: 2, Start: 110, End: 120}, read(1, 130, 140)}, ""},
		{"highest invalidated version counts", []Op{inv(3, 310, 320), inv(2, 110, 330), read(2, 325, 340)}, "stale"},
		{"other keys do not count", []Op{{Kind: Invalidate, Key: "j", Version: 9, Start: 1, End: 2, OK: true}, read(1, 130, 140)}, ""},
		{"failed read is not checked", []Op{inv(2, 110, 120), {Kind: Read, Key: "k", Version: 0, Start: 130, End: 140}}, ""},
		{"version from the future", []Op{read(3, 130, 140)}, "phantom"},
		{"version reached during the read", []Op{read(3, 290, 310)}, ""},
		{"version never held", []Op{read(0, 130, 140)}, "phantom"},
		{"unknown key", []Op{{Kind: Read, Key: "x", Version: 1, Start: 1, End: 2, OK: true}}, "phantom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Check(tc.ops, bumps)
			switch {
			case tc.want == "" && len(got) != 0:
				t.Fatalf("violations %v, want none", got)
			case tc.want != "" && len(got) != 1:
				t.Fatalf("violations %v, want one (%s)", got, tc.want)
			case tc.want != "" && !strings.HasPrefix(got[0].Why, tc.want):
				t.Fatalf("violation %q, want %s", got[0].Why, tc.want)
			}
		})
	}
}

func TestSourceIsVersioned(t *testing.T) {
	s := NewSource([]string{"a"}, 0, 1)
	if v, err := s.Read(t.Context(), "a", "t"); err != nil || v != 1 {
		t.Fatalf("Read = %d, %v", v, err)
	}
	if v := s.Bump("a"); v != 2 {
		t.Fatalf("Bump = %d", v)
	}
	if v, _ := s.Read(t.Context(), "a", "t"); v != 2 {
		t.Fatalf("Read after Bump = %d", v)
	}
	if b := s.Bumps(); len(b) != 2 || b[1].Version != 2 || b[1].At < b[0].At {
		t.Fatalf("Bumps = %+v", b)
	}
	if _, err := s.Read(t.Context(), "zz", "t"); err == nil {
		t.Fatal("Read of an unknown key succeeded")
	}
}
