package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
)

// clusterNode is one redis-server of a test cluster and what CLUSTER NODES says of it.
type clusterNode struct {
	srv    *redistest.Server
	id     string
	master string // the master's id, for a replica
	slots  [][2]int
}

func (n *clusterNode) owns(slot int) bool {
	for _, r := range n.slots {
		if r[0] <= slot && slot <= r[1] {
			return true
		}
	}
	return false
}

// startCluster starts six redis-servers in cluster mode with a short node timeout and
// makes them a cluster of three masters with one replica each.
func startCluster(t *testing.T) []*redistest.Server {
	t.Helper()
	cli := cliBinary(t)
	var nodes []*redistest.Server
	args := []string{"--cluster", "create"}
	for range 6 {
		// The bus port is given, not left at port+10000, which may not exist.
		srv := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--cluster-port", strconv.Itoa(redistest.FreePort(t)))
		nodes = append(nodes, srv)
		args = append(args, srv.Addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	eventually(t, 20*time.Second, 50*time.Millisecond, "cluster_state:ok on every node", func() bool {
		for _, n := range nodes {
			if !strings.Contains(n.MustDo("CLUSTER", "INFO"), "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	return nodes
}

// clusterNodes reads the cluster's layout as the node asked sees it.
func clusterNodes(t *testing.T, ask *redistest.Server, all []*redistest.Server) map[string]*clusterNode {
	t.Helper()
	byAddr := map[string]*clusterNode{}
	for _, line := range strings.Split(ask.MustDo("CLUSTER", "NODES"), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		n := &clusterNode{id: f[0]}
		if strings.Contains(f[2], "slave") {
			n.master = f[3]
		}
		for _, r := range f[8:] {
			lo, hi, found := strings.Cut(r, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				continue // an importing or migrating slot
			}
			b := a
			if found {
				b, _ = strconv.Atoi(hi)
			}
			n.slots = append(n.slots, [2]int{a, b})
		}
		for _, s := range all {
			if s.Addr() == addr {
				n.srv = s
			}
		}
		byAddr[addr] = n
	}
	return byAddr
}

// TestCluster: in cluster mode (three masters, one replica each) getProduct caches
// keys of every master and cacheClear removes them from every master; when a master
// dies, reads are served (BYPASS while its slots are down) and, once its replica took
// over, the cache serves HITs again, all from the same function processes.
func TestCluster(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t)
	layout := clusterNodes(t, nodes[0], nodes)
	var masters []*clusterNode
	for _, n := range layout {
		if n.master == "" && len(n.slots) > 0 {
			masters = append(masters, n)
		}
	}
	if len(masters) != 3 {
		t.Fatalf("%d masters, want 3: %v", len(masters), nodes[0].MustDo("CLUSTER", "NODES"))
	}
	slices.SortFunc(masters, func(a, b *clusterNode) int { return a.slots[0][0] - b.slots[0][0] })

	s := newStack(t, "redis://"+nodes[0].Addr(), "REDIS_CLUSTER", "true")
	// Two product ids per master, so the keys are in slots of every master.
	ids := map[*clusterNode][]string{}
	var all []string
	for i := 1; len(all) < 6 && i <= 1000; i++ {
		id := fmt.Sprintf("prod-%04d", i)
		slot, err := strconv.Atoi(nodes[0].MustDo("CLUSTER", "KEYSLOT", s.productKey(id)))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range masters {
			if m.owns(slot) && len(ids[m]) < 2 {
				ids[m] = append(ids[m], id)
				all = append(all, id)
			}
		}
	}
	gp, cc := s.start("getproduct"), s.start("cacheclear")

	fillAll := func() {
		t.Helper()
		for _, id := range all {
			wantProduct(t, gp.invoke(productEvent(t, v2, id)), id, "MISS")
		}
		for _, id := range all {
			wantProduct(t, gp.invoke(productEvent(t, v1, id)), id, "HIT")
		}
		for _, m := range masters {
			keys := scanKeys(t, m.srv.Addr(), "", s.prefix+"product:*")
			want := []string{s.productKey(ids[m][0]), s.productKey(ids[m][1])}
			slices.Sort(keys)
			slices.Sort(want)
			if !slices.Equal(keys, want) {
				t.Fatalf("master %s holds %v, want %v", m.srv.Addr(), keys, want)
			}
		}
	}
	fillAll()
	r := cc.invoke(clearEvent(t, v2, s.token, `{"scope":"products"}`))
	if r.Status != 200 || r.json(t)["deleted"] != float64(len(all)) {
		t.Fatalf("cacheClear: %d %s, want %d deleted", r.Status, r.Body, len(all))
	}
	for _, m := range masters {
		if keys := scanKeys(t, m.srv.Addr(), "", s.prefix+"product:*"); len(keys) != 0 {
			t.Fatalf("master %s still holds %v after cacheClear", m.srv.Addr(), keys)
		}
	}
	fillAll()

	// Kill a master other than the function's seed node.
	var victim *clusterNode
	for _, m := range masters {
		if m.srv != nodes[0] {
			victim = m
			break
		}
	}
	// The seed's view of the replicas can lag the cluster's creation (gossip), so read
	// it again until the victim's replica shows.
	var heir *clusterNode
	eventually(t, 10*time.Second, 50*time.Millisecond, "a replica of the master to kill", func() bool {
		for _, n := range clusterNodes(t, nodes[0], nodes) {
			if n.master == victim.id && n.srv != nil {
				heir = n
				return true
			}
		}
		return false
	})
	// Wait until the replica has the keys, so that the failover keeps them.
	eventually(t, 5*time.Second, 20*time.Millisecond, "the replica to hold the master's keys", func() bool {
		return len(scanKeys(t, heir.srv.Addr(), "", s.prefix+"product:*")) == 2
	})
	victim.srv.Kill()
	killed := time.Now()
	id := ids[victim][0]
	r = gp.invoke(productEvent(t, v2, id))
	wantProduct(t, r, id, "BYPASS")
	within(t, "getProduct of a key of the dead master", r, faultBound)
	for _, other := range all {
		if r := gp.invoke(productEvent(t, v2, other)); r.Status != 200 {
			t.Fatalf("getProduct %s during the failover: %d %s", other, r.Status, r.Body)
		}
	}

	eventually(t, 30*time.Second, 50*time.Millisecond, "the replica to take over", func() bool {
		role := heir.srv.MustDo("ROLE")
		return strings.HasPrefix(role, "master") && strings.Contains(heir.srv.MustDo("CLUSTER", "INFO"), "cluster_state:ok")
	})
	t.Logf("failover after %v", time.Since(killed).Round(time.Millisecond))
	// The heir says ok first; every other node learns of the failover by gossip and
	// answers CLUSTERDOWN until then (a CI run read prod-0002, on a live master, as
	// BYPASS right after the heir's ok). The cluster has recovered when all of them say ok.
	eventually(t, 10*time.Second, 50*time.Millisecond, "cluster_state:ok on every live node", func() bool {
		for _, n := range nodes {
			if n != victim.srv && !strings.Contains(n.MustDo("CLUSTER", "INFO"), "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	t.Logf("every live node ok after %v", time.Since(killed).Round(time.Millisecond))
	got := recoverCache(t, gp, id, 20*time.Second)
	if last := got[len(got)-1]; last == "MISS" {
		got = append(got, gp.invoke(productEvent(t, v2, id)).cache())
	}
	if last := got[len(got)-1]; last != "HIT" {
		t.Fatalf("after the failover: %v, want HIT (after a MISS at most)", got)
	}
	t.Logf("X-Cache of %s: BYPASS at the kill, then %v until recovery", id, got)
	for _, other := range all {
		wantProduct(t, gp.invoke(productEvent(t, v2, other)), other, "HIT")
	}
	r = cc.invoke(clearEvent(t, v2, s.token, `{"scope":"products"}`))
	if r.Status != 200 || r.json(t)["deleted"] != float64(len(all)) {
		t.Fatalf("cacheClear after the failover: %d %s, want %d deleted", r.Status, r.Body, len(all))
	}
	for _, m := range append(slices.DeleteFunc(masters, func(m *clusterNode) bool { return m == victim }), heir) {
		if keys := scanKeys(t, m.srv.Addr(), "", s.prefix+"product:*"); len(keys) != 0 {
			t.Fatalf("master %s still holds %v after cacheClear", m.srv.Addr(), keys)
		}
	}
	for _, f := range []*function{gp, cc} {
		if n := len(f.runtimePIDs()); n != 1 {
			t.Errorf("%s: %d runtime processes, want 1 (never restarted)", f.name, n)
		}
	}
}
