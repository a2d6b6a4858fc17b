package console

import (
	"context"
	"errors"
	"time"
)

// errHashBusy means every password-hashing slot is taken and the wait queue is full, or a
// queued sign-in waited longer than its limit: the caller answers 429 with Retry-After.
var errHashBusy = errors.New("password hashing is at capacity")

// hashPool bounds the argon2id work of one process. Each hash holds Argon2Params.MemoryKiB
// for as long as it runs, so the memory sign-ins can take is at most slots × that, however
// many arrive at once; callers beyond the slots wait in a short queue (holding no hash
// memory), and callers beyond the queue are refused at once rather than piling up. In one-
// process mode this is what keeps a sign-in flood from taking intake down with it.
type hashPool struct {
	slots   chan struct{} // a token per hash running
	queue   chan struct{} // a token per caller waiting for a slot
	maxWait time.Duration
}

func newHashPool(concurrency, queue int, maxWait time.Duration) *hashPool {
	return &hashPool{slots: make(chan struct{}, concurrency), queue: make(chan struct{}, queue), maxWait: maxWait}
}

// do runs f in a slot, waiting at most maxWait for one. It returns errHashBusy when the
// queue is full or the wait ran out, and ctx's error when the caller went away.
func (p *hashPool) do(ctx context.Context, f func()) error {
	if err := p.acquire(ctx); err != nil {
		return err
	}
	defer func() { <-p.slots }()
	f()
	return nil
}

// tryDo runs f if a slot is free right now, for work that can wait for another time (a
// rehash with stronger parameters), and reports whether it ran.
func (p *hashPool) tryDo(f func()) bool {
	select {
	case p.slots <- struct{}{}:
	default:
		return false
	}
	defer func() { <-p.slots }()
	f()
	return true
}

func (p *hashPool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case p.queue <- struct{}{}:
	default:
		return errHashBusy
	}
	defer func() { <-p.queue }()
	t := time.NewTimer(p.maxWait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errHashBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryAfter is what a refused caller is told to wait: by then the queue ahead of it has
// had its full wait to drain.
func (p *hashPool) retryAfter() time.Duration {
	return max(time.Second, p.maxWait)
}
