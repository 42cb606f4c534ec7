//go:build race

package gremlin

// raceEnabled: gremlin-go v3.8.1 writes a connection's state from its read
// loop when the connection fails (connection.errorCallback) and reads it
// from the pool (loadBalancingPool.getLeastUsedConnection) without
// synchronization. The race detector reports it whenever a connection is
// dropped and the pool is used again. Tests that drop connections run that
// part without -race (scripts/test runs this package a second time).
const raceEnabled = true
