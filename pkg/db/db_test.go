package db_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
)

// The work pool is sized by the cores the process may use (GOMAXPROCS, which Go takes from a
// container's CPU limit), not by the node's CPU count; a URL's pool_max_conns still wins.
func TestOpenSizesThePoolByTheCoresTheProcessMayUse(t *testing.T) {
	url := dbtest.NewURL(t, "empty", func(context.Context, string) error { return nil })
	ctx := context.Background()
	for _, c := range []struct {
		procs int
		want  int32
	}{{1, 16}, {runtime.NumCPU() + 7, int32(max(16, 4*(runtime.NumCPU()+7)))}} {
		prev := runtime.GOMAXPROCS(c.procs)
		pool, err := db.Open(ctx, url)
		runtime.GOMAXPROCS(prev)
		if err != nil {
			t.Fatal(err)
		}
		if got := pool.Config().MaxConns; got != c.want {
			t.Errorf("GOMAXPROCS %d: pool of %d connections, want %d", c.procs, got, c.want)
		}
		pool.Close()
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	pool, err := db.Open(ctx, url+sep+"pool_max_conns=3")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := pool.Config().MaxConns; got != 3 {
		t.Errorf("pool_max_conns=3 in the URL: pool of %d connections", got)
	}
}
