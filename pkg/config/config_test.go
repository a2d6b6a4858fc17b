package config

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestPrecedenceFlagThenEnvThenDefault(t *testing.T) {
	t.Setenv("T_ADDR", "127.0.0.1:1")
	t.Setenv("T_WAIT", "3s")
	t.Setenv("T_ON", "false")
	s := New(flag.NewFlagSet("t", flag.ContinueOnError))
	addr := s.String("addr", "T_ADDR", "127.0.0.1:0", "")
	other := s.String("other", "T_UNSET", "dflt", "")
	wait := s.Duration("wait", "T_WAIT", time.Second, "")
	n := s.Int("n", "T_N", 7, "")
	on := s.Bool("on", "T_ON", true, "")
	all := s.Bool("all", "T_ALL", false, "")
	if err := s.Parse([]string{"--addr", "127.0.0.1:2", "--all"}); err != nil {
		t.Fatal(err)
	}
	if *addr != "127.0.0.1:2" || *other != "dflt" || *wait != 3*time.Second || *n != 7 || *on || !*all {
		t.Fatalf("got addr=%s other=%s wait=%s n=%d on=%v all=%v", *addr, *other, *wait, *n, *on, *all)
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		env, val string
		declare  func(*Set)
	}{
		{"T_WAIT", "soon", func(s *Set) { s.Duration("wait", "T_WAIT", time.Second, "") }},
		{"T_N", "many", func(s *Set) { s.Int("n", "T_N", 1, "") }},
		{"T_ON", "perhaps", func(s *Set) { s.Bool("on", "T_ON", false, "") }},
	} {
		t.Setenv(tc.env, tc.val)
		s := New(flag.NewFlagSet("t", flag.ContinueOnError))
		tc.declare(s)
		if err := s.Parse(nil); err == nil || !strings.Contains(err.Error(), tc.env) {
			t.Errorf("%s=%s: error %v does not name the setting", tc.env, tc.val, err)
		}
	}
	for _, tc := range []struct{ v, want string }{{"nonsense", "host:port"}, {"127.0.0.1:70000", "port"}} {
		if err := HostPort("X_ADDR", tc.v); err == nil || !strings.Contains(err.Error(), "X_ADDR") {
			t.Errorf("HostPort(%s): %v", tc.v, err)
		}
	}
	if err := Loopback("X_NATS", "0.0.0.0:4223"); err == nil {
		t.Error("0.0.0.0 accepted as loopback")
	}
	for _, ok := range []string{"127.0.0.1:4223", "[::1]:4223", "localhost:1"} {
		if err := Loopback("X_NATS", ok); err != nil {
			t.Errorf("Loopback(%s): %v", ok, err)
		}
	}
}
