// Package freeport finds a free loopback TCP port for a server a test
// starts (PostgreSQL, Redis, Virtuoso, the AWS emulators).
package freeport

import "net"

// Port returns a loopback port free at the time of the call.
func Port() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
