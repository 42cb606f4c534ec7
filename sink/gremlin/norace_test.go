//go:build !race

package gremlin

const raceEnabled = false
