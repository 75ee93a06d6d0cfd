package redisclient

import (
	"context"

	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/redis/go-redis/v9"
)

// clusterReload makes a cluster client reload its slot map when a command fails with
// a connection fault or CLUSTERDOWN. go-redis reloads it on MOVED and ASK replies, and
// otherwise only every ClusterStateReloadInterval (60 s): after a failover it keeps
// sending the dead master's slots to the dead address, which never answers MOVED, so
// those keys would bypass the cache for up to a minute after the replica took over.
// The reload is go-redis's lazy one: in the background, at most one at a time.
type clusterReload struct{ c *redis.ClusterClient }

func (h clusterReload) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h clusterReload) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.after(err)
		return err
	}
}

func (h clusterReload) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.after(err)
		return err
	}
}

func (h clusterReload) after(err error) {
	switch fault.Classify(err) {
	case fault.CauseConnectionRefused, fault.CauseConnectionReset, fault.CauseTimeout, fault.CauseUnreachable, fault.CauseClusterDown:
		h.c.ReloadState(context.Background())
	}
}
