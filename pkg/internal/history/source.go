package history

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Source is a versioned product source: every key starts at version 1, Bump moves it
// on, and Read returns the version current at one instant within the read, after a
// random delay of up to MaxDelay, as a database read would. It is linearizable: a Read
// that starts after a Bump returned sees it.
type Source struct {
	// MaxDelay bounds the random time a Read takes.
	MaxDelay time.Duration

	mu       sync.Mutex
	versions map[string]int64
	bumps    []Bump
	rng      *rand.Rand
	inFlight map[string]int // reads in progress, by caller
}

// NewSource returns a Source holding keys at version 1, with delays drawn from seed.
func NewSource(keys []string, maxDelay time.Duration, seed uint64) *Source {
	s := &Source{MaxDelay: maxDelay, versions: map[string]int64{}, inFlight: map[string]int{},
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	now := Now()
	for _, k := range keys {
		s.versions[k] = 1
		s.bumps = append(s.bumps, Bump{Key: k, Version: 1, At: now})
	}
	return s
}

// Read returns key's version, reading it at a random instant of a random delay. who
// names the caller, for InFlight.
func (s *Source) Read(ctx context.Context, key, who string) (int64, error) {
	s.mu.Lock()
	total := time.Duration(s.rng.Int64N(int64(s.MaxDelay) + 1))
	before := time.Duration(s.rng.Int64N(int64(total) + 1))
	s.inFlight[who]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight[who]--
		s.mu.Unlock()
	}()
	if err := pause(ctx, before); err != nil {
		return 0, err
	}
	s.mu.Lock()
	v, ok := s.versions[key]
	s.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("history: no key %q", key)
	}
	return v, pause(ctx, total-before)
}

// Bump moves key to its next version and returns it.
func (s *Source) Bump(key string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions[key]++
	v := s.versions[key]
	s.bumps = append(s.bumps, Bump{Key: key, Version: v, At: Now()})
	return v
}

// Bumps returns every version each key has held, with when it came to be.
func (s *Source) Bumps() []Bump {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Bump(nil), s.bumps...)
}

// InFlight reports how many reads by who are in progress.
func (s *Source) InFlight(who string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight[who]
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Handler serves the Source to other processes: GET /read?key=K&who=W answers the
// version, POST /bump?key=K the new one.
func (s *Source) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /read", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Read(r.Context(), r.URL.Query().Get("key"), r.URL.Query().Get("who"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprint(w, v)
	})
	mux.HandleFunc("POST /bump", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, s.Bump(r.URL.Query().Get("key")))
	})
	return mux
}

// Remote is a Source served by another process's Handler.
type Remote struct {
	// URL is the base URL of the Handler.
	URL    string
	Client *http.Client
}

// Read asks the remote Source for key's version.
func (r Remote) Read(ctx context.Context, key, who string) (int64, error) {
	return r.do(ctx, http.MethodGet, "/read?key="+key+"&who="+who)
}

// Bump moves key on at the remote Source.
func (r Remote) Bump(ctx context.Context, key string) (int64, error) {
	return r.do(ctx, http.MethodPost, "/bump?key="+key)
}

func (r Remote) do(ctx context.Context, method, path string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.URL+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf [32]byte
	n, _ := resp.Body.Read(buf[:])
	if resp.StatusCode != http.StatusOK {
		return 0, errors.New("history: source: " + resp.Status)
	}
	return strconv.ParseInt(string(buf[:n]), 10, 64)
}
