// Package loopback picks loopback addresses for servers that are told their address before
// they bind it: a child process, or a server started again on the address it had.
//
// The ports come from below Linux's ephemeral range (32768-60999). A port the kernel picks
// for ":0" lies in that range, and once the picker closes it, any outgoing connection on the
// machine may take it as its local end before the server binds it: CI saw "address already
// in use" that way. Below the range only another listener can hold a port, and FreeAddr
// checks for one. Ports go in turn from a random start, so one process never picks the same
// port twice and two processes rarely pick the same one.
package loopback

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
)

const (
	low  = 20000
	high = 32000
)

var next atomic.Int64

func init() { next.Store(int64(rand.IntN(high - low))) }

// FreeAddr returns a loopback address ("127.0.0.1:port") nothing listens on right now.
func FreeAddr() (string, error) {
	for range high - low {
		port := low + next.Add(1)%(high-low)
		addr := "127.0.0.1:" + strconv.FormatInt(port, 10)
		if l, err := net.Listen("tcp", addr); err == nil {
			_ = l.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("no free loopback port between %d and %d", low, high)
}
