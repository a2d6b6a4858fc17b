// Package events moves domain events from a producing service's Postgres transaction to
// every consumer's Postgres transaction, through JetStream, without losing or duplicating
// an effect. Postgres is the truth; NATS is the transport.
//
// Invariants, in the order an event meets them:
//
//   - An event exists once its outbox row committed in the same transaction as the domain
//     rows it describes (AppendOutbox). Its event id, a UUIDv7, never changes again.
//   - The Relay publishes every unpublished outbox row with Nats-Msg-Id = event id and marks
//     only rows JetStream acknowledged (a duplicate ack counts). It claims rows with
//     FOR UPDATE SKIP LOCKED and never keeps a cursor on the serial id: ids are assigned at
//     insert, not at commit, so a cursor would skip a slow transaction's row forever.
//   - Streams use Limits retention, never WorkQueue or Interest: on those the broker forgets
//     message ids of consumed messages at restart and stores a republish again
//     (nats-server issue #3272).
//   - A Consumer records the event id in its inbox table in the same transaction as the
//     handler's effect, and acknowledges only after that commit. A redelivery finds the id
//     and is acknowledged without running the handler again.
//   - A message that keeps failing is written to the dead_letter table first, then
//     terminated. The row is the record; it can be listed and replayed.
//
// The broker may still lose an acknowledged message under correlated faults; a reconciler in
// the services re-emits such events with the same event id, and the inboxes absorb the
// repeats.
package events
