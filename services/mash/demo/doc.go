// Package demo makes believable, entirely synthetic history for a laptop run of mash: a few
// hundred referrals over the last months, each driven through the real services' APIs at
// simulated times, so a newcomer sees a living triage queue and management information
// with a past.
//
// The package has three parts:
//   - Clock, the simulated time every service runs on during the demo (it only moves
//     forward, so no service ever sees time go backwards);
//   - Generate, a pure function from a seed to a Plan: who is referred, by whom, when, about
//     what, and how the hub will work each referral;
//   - Driver, which plays a Plan against running services over gRPC with the credentials
//     of the agencies and staff, advancing the Clock between steps and polling (never
//     sleeping a fixed time) for the asynchronous effects each step depends on.
//
// Invariants: every person is fictional (names from short fixed lists, NHS numbers from
// the 999 range the NHS never issues, addresses on "Example" streets); a Plan depends only
// on its Params, so a run killed midway is resumed by replaying the same Plan, and every
// write goes through an API that is idempotent or checked first (intake by external
// reference, decisions and closures by the case's state).
package demo
