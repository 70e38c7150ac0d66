//go:build !unix

package main

import "testing"

// advRaiseNofile: only Unix limits open descriptors per process this way.
func advRaiseNofile(t *testing.T, n uint64) {}
