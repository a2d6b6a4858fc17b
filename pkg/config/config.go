// Package config reads settings from flags and environment variables with local defaults:
// a flag beats its environment variable, which beats the default. Every setting is named by
// its environment variable in errors, so a bad value fails start-up saying which one.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Set collects settings on one FlagSet.
type Set struct {
	fs     *flag.FlagSet
	errs   []error
	parsed []func() error
}

// New wraps fs.
func New(fs *flag.FlagSet) *Set { return &Set{fs: fs} }

// String declares a string setting.
func (s *Set) String(flagName, env, def, usage string) *string {
	v := def
	if e, ok := os.LookupEnv(env); ok {
		v = e
	}
	return s.fs.String(flagName, v, usage+" ($"+env+")")
}

// Int declares an integer setting.
func (s *Set) Int(flagName, env string, def int, usage string) *int {
	p := new(int)
	raw := s.String(flagName, env, strconv.Itoa(def), usage)
	s.parsed = append(s.parsed, func() error {
		n, err := strconv.Atoi(*raw)
		if err != nil {
			return fmt.Errorf("%s %q: must be a whole number", env, *raw)
		}
		*p = n
		return nil
	})
	return p
}

// Duration declares a duration setting ("30s", "5m").
func (s *Set) Duration(flagName, env string, def time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	raw := s.String(flagName, env, def.String(), usage)
	s.parsed = append(s.parsed, func() error {
		d, err := time.ParseDuration(*raw)
		if err != nil || d < 0 {
			return fmt.Errorf("%s %q: must be a positive duration such as 30s or 5m", env, *raw)
		}
		*p = d
		return nil
	})
	return p
}

// Bool declares a boolean setting; as a flag it may stand alone (--all) or take a value
// (--migrate=false).
func (s *Set) Bool(flagName, env string, def bool, usage string) *bool {
	p := s.fs.Bool(flagName, def, usage+" ($"+env+")")
	if e, ok := os.LookupEnv(env); ok {
		s.errs = append(s.errs, func() error {
			b, err := strconv.ParseBool(e)
			if err != nil {
				return fmt.Errorf("%s %q: must be true or false", env, e)
			}
			*p = b
			return nil
		}())
	}
	return p
}

// Lookup returns the current value of a declared flag by name ("" if none).
func (s *Set) Lookup(flagName string) string {
	if f := s.fs.Lookup(flagName); f != nil {
		return f.Value.String()
	}
	return ""
}

// Parse parses args and converts typed settings; the first bad setting is the error.
func (s *Set) Parse(args []string) error {
	if err := errors.Join(s.errs...); err != nil {
		return err
	}
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	for _, f := range s.parsed {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// HostPort checks a listen address and names the setting when it is wrong.
func HostPort(env, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%s %q: must be host:port, e.g. 127.0.0.1:8080", env, v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s %q: port must be a number from 0 to 65535", env, v)
	}
	_ = host
	return nil
}

// Loopback checks that a listen address is on the loopback interface.
func Loopback(env, v string) error {
	if err := HostPort(env, v); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(v)
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s %q: must be a loopback address (127.0.0.1 or ::1): the embedded broker has no authentication", env, v)
	}
	return nil
}
