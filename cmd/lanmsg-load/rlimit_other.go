//go:build !unix

package main

// raiseNofile: only Unix limits open descriptors per process this way.
func raiseNofile() {}
