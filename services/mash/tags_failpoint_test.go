//go:build failpoint

package main_test

const buildTags = "failpoint"
